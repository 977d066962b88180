"""The SecureBoot check on enroll, against fake efivarfs files (4-byte attributes + 1 data byte)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from volumed.keys import KeyRejectedError
from volumed.keys.tpm import SecureBootError, check_secureboot

if TYPE_CHECKING:
    from pathlib import Path

GUID = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
ATTRIBUTES = b"\x06\x00\x00\x00"  # BOOTSERVICE_ACCESS | RUNTIME_ACCESS


def efivars(tmp_path: Path, *, secure_boot: int | None, setup_mode: int | None) -> Path:
    if secure_boot is not None:
        (tmp_path / f"SecureBoot-{GUID}").write_bytes(ATTRIBUTES + bytes([secure_boot]))
    if setup_mode is not None:
        (tmp_path / f"SetupMode-{GUID}").write_bytes(ATTRIBUTES + bytes([setup_mode]))
    return tmp_path


def test_secureboot_on_in_user_mode_passes(tmp_path: Path) -> None:
    check_secureboot(efivars(tmp_path, secure_boot=1, setup_mode=0))


def test_secureboot_on_without_setupmode_variable_passes(tmp_path: Path) -> None:
    check_secureboot(efivars(tmp_path, secure_boot=1, setup_mode=None))


@pytest.mark.parametrize("secure_boot", [0, None])
def test_secureboot_off_or_absent_is_refused(tmp_path: Path, secure_boot: int | None) -> None:
    with pytest.raises(
        SecureBootError, match=r"as SecureBoot is disabled \(and checkSecurebootStatusOnEnroll"
    ):
        check_secureboot(efivars(tmp_path, secure_boot=secure_boot, setup_mode=0))


def test_setup_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SecureBootError, match="as the system is in SecureBoot setup mode") as caught:
        check_secureboot(efivars(tmp_path, secure_boot=1, setup_mode=1))
    assert isinstance(caught.value, KeyRejectedError)


def test_malformed_variable_is_named(tmp_path: Path) -> None:
    (tmp_path / f"SecureBoot-{GUID}").write_bytes(b"\x06\x00\x00\x00\x01\x00")
    with pytest.raises(SecureBootError, match=f"SecureBoot-{GUID} is not a one-byte boolean"):
        check_secureboot(tmp_path)


def test_missing_efivars_dir_counts_as_secureboot_off(tmp_path: Path) -> None:
    with pytest.raises(SecureBootError, match="disabled"):
        check_secureboot(tmp_path / "no-efivarfs")
