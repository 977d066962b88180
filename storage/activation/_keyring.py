"""The kernel keyring, just enough to hand dm-crypt a volume key as a ``logon`` key (as cryptsetup does).

A ``logon`` key can be used by the kernel but never read back from user space. It goes into the session
keyring, which ``dmsetup`` (our child) inherits and dm-crypt searches when the table names
``:<size>:logon:<description>``; dm-crypt copies the key at table load, after which we revoke it.
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

_SYS_ADD_KEY: Final = {"x86_64": 248, "aarch64": 217}
_SYS_KEYCTL: Final = {"x86_64": 250, "aarch64": 219}
KEY_SPEC_SESSION_KEYRING: Final = -3
KEYCTL_REVOKE: Final = 3
KEYCTL_UNLINK: Final = 9

# The process' own symbols, libc's among them: ctypes.util.find_library("c") runs `ldconfig -p` (a
# subprocess) at every import.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _numbers() -> tuple[int, int] | None:
    machine = os.uname().machine
    if machine not in _SYS_ADD_KEY:
        return None
    return _SYS_ADD_KEY[machine], _SYS_KEYCTL[machine]


def add_logon_key(description: str, key: bytes) -> int | None:
    """Add a ``logon`` key to the session keyring; its serial, or None when the keyring is unavailable.

    ``description`` must have a ``prefix:`` (the logon type's rule), e.g. ``volumed:luks2-STATE``.
    """
    numbers = _numbers()
    if numbers is None:
        return None
    payload = ctypes.create_string_buffer(key, len(key))
    try:
        serial = _libc.syscall(
            numbers[0],
            b"logon",
            description.encode(),
            payload,
            ctypes.c_size_t(len(key)),
            ctypes.c_int(KEY_SPEC_SESSION_KEYRING),
        )
    finally:
        ctypes.memset(payload, 0, len(key))
    return int(serial) if serial > 0 else None


def remove_key(serial: int) -> None:
    """Revoke the key (unusable at once) and unlink it from the session keyring."""
    numbers = _numbers()
    if numbers is None:
        return
    _libc.syscall(numbers[1], ctypes.c_int(KEYCTL_REVOKE), ctypes.c_int(serial))
    _libc.syscall(
        numbers[1], ctypes.c_int(KEYCTL_UNLINK), ctypes.c_int(serial), ctypes.c_int(KEY_SPEC_SESSION_KEYRING)
    )
