"""After a crash at any write of add-key, kill-slot, change-key or token import, cryptsetup still opens the
volume (repairing a half-written copy itself) with a passphrase that was valid before or after."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest

from tests.storage.luks2._luks2_helpers import (
    NEW,
    OPERATIONS,
    OTHER,
    PASS,
    count_writes,
    crash_at,
    cryptsetup,
    key_file,
    prepared,
)

if TYPE_CHECKING:
    from pathlib import Path


def _opens(path: Path, secret_file: Path) -> bool:
    return (
        cryptsetup("open", "--test-passphrase", "--key-file", secret_file, path, check=False).returncode == 0
    )


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_cryptsetup_opens_after_every_crash_point(tmp_path: Path, name: str) -> None:
    op, must = OPERATIONS[name]
    base = prepared(tmp_path)
    work, theirs = tmp_path / "work.img", tmp_path / "theirs.img"
    files = {secret: key_file(tmp_path, secret) for secret in (PASS, OTHER, NEW)}
    for k in range(count_writes(base, work, op)):
        crash_at(base, work, op, k)
        shutil.copyfile(work, theirs)
        cryptsetup("luksDump", theirs)  # accepted (and repaired if one copy was half written)
        working = [secret for secret in (PASS, NEW) if _opens(theirs, files[secret])]
        if name == "change-key":
            assert working, f"{name}: cryptsetup locked out after write {k}"
        else:
            assert set(must) <= set(working), f"{name}: cryptsetup lost a passphrase after write {k}"
        if name != "kill-slot":
            assert _opens(theirs, files[OTHER])
