"""The SecureBoot check on enroll, read from the UEFI variables the kernel exposes in efivarfs."""

from __future__ import annotations

from pathlib import Path

from ._errors import SecureBootError

DEFAULT_EFIVARS_DIR = Path("/sys/firmware/efi/efivars")
EFI_GLOBAL_VARIABLE_GUID = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
"""The GUID of the SecureBoot and SetupMode variables (UEFI spec, 3.3 Globally Defined Variables)."""


def read_efi_flag(efivars_dir: Path, name: str) -> bool | None:
    """Return the one-byte boolean UEFI variable ``name``, or ``None`` when it does not exist.

    An efivarfs file is a 4-byte little-endian attributes word followed by the data.

    Raises:
        SecureBootError: the variable exists but cannot be read or is not a one-byte boolean.
    """
    path = efivars_dir / f"{name}-{EFI_GLOBAL_VARIABLE_GUID}"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SecureBootError(f"cannot read UEFI variable {path}: {exc.strerror}") from None
    if len(raw) != 5 or raw[4] not in (0, 1):
        raise SecureBootError(f"UEFI variable {path} is not a one-byte boolean ({len(raw)} bytes)")
    return raw[4] == 1


def check_secureboot(efivars_dir: Path = DEFAULT_EFIVARS_DIR) -> None:
    """Require SecureBoot on and not in setup mode, as Talos' ``checkSecurebootStatusOnEnroll`` does.

    A missing ``SecureBoot`` variable (legacy BIOS boot, no efivarfs) counts as SecureBoot off.

    Raises:
        SecureBootError: with Talos' messages.
    """
    if not read_efi_flag(efivars_dir, "SecureBoot"):
        raise SecureBootError(
            "failed to enroll the TPM2 key, as SecureBoot is disabled "
            "(and checkSecurebootStatusOnEnroll is enabled)"
        )
    if read_efi_flag(efivars_dir, "SetupMode"):
        raise SecureBootError(
            "failed to enroll the TPM2 key, as the system is in SecureBoot setup mode "
            "(and checkSecurebootStatusOnEnroll is enabled)"
        )
