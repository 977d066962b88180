"""A master key file of another user is refused whatever its mode, as ssh refuses another user's key:
its owner can read the keys and replace them (before, a 0600 file of `nobody` was served by root)."""

from __future__ import annotations

import os
import pwd
from typing import TYPE_CHECKING

import pytest

from volumed.keys.kms import MasterKeyFileError, MasterKeyRing, load_master_key_file, save_master_key_file

if TYPE_CHECKING:
    from pathlib import Path


def test_a_0600_file_of_another_user_is_refused(tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    path = tmp_path / "keys.yaml"
    save_master_key_file(path, MasterKeyRing.generate(), exclusive=True)
    os.chown(path, nobody, -1)
    with pytest.raises(MasterKeyFileError) as info:
        load_master_key_file(path)
    assert str(info.value) == (
        f"master key file {path}: owned by uid {nobody}, not by this user (uid {os.geteuid()}) or root: "
        "its owner could read the keys or replace them"
    )


def test_a_file_of_this_user_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    ring = MasterKeyRing.generate()
    save_master_key_file(path, ring, exclusive=True)
    assert os.stat(path).st_uid == os.geteuid()
    assert load_master_key_file(path) == ring
