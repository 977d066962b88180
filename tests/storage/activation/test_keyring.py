"""The logon key hand-over to dm-crypt: added to the session keyring, unreadable, and gone after removal."""

from __future__ import annotations

import os

from volumed.storage.activation import _keyring


def live_keys(description: str) -> list[str]:
    with open("/proc/keys", encoding="utf-8") as keys:
        return [line for line in keys if line.rstrip().endswith(f"{description}: 64") and " perm " in line]


def test_logon_key_round_trip() -> None:
    description = f"volumed:test-{os.getpid()}"
    key = os.urandom(64)
    serial = _keyring.add_logon_key(description, key)
    assert serial is not None
    try:
        assert len(live_keys(description)) == 1
        with open("/proc/keys", encoding="utf-8") as keys:
            assert key.hex() not in keys.read()
    finally:
        _keyring.remove_key(serial)
    assert live_keys(description) == []
