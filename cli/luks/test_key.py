"""`volumed luks test-key DEVICE`: check a passphrase (cryptsetup open --test-passphrase)."""

from __future__ import annotations

from typing import Any

import click

from ._common import (
    device_options,
    key_file_option,
    key_slot_option,
    luks_errors,
    open_volume,
    out,
    unlock_with_options,
)


@click.command("test-key")
@click.argument("device", type=click.Path(dir_okay=False))
@key_file_option
@key_slot_option
@device_options
def test_key(device: str, **options: Any) -> None:
    """Check that a passphrase opens DEVICE; prints the key slot that opened. Exit 2 if none did."""
    with luks_errors(device), open_volume(device, options, read_only=True) as volume:
        key = unlock_with_options(volume, device, options)
        out(f"Key slot {key.keyslot} unlocked.")
