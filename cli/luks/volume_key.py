"""`volumed luks volume-key DEVICE`: print the volume key in hex (cryptsetup luksDump --dump-volume-key)."""

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


@click.command("volume-key")
@click.argument("device", type=click.Path(dir_okay=False))
@key_file_option
@key_slot_option
@device_options
def volume_key(device: str, **options: Any) -> None:
    """Print DEVICE's volume key as hex. Anyone with it can decrypt the volume: handle it with care."""
    with luks_errors(device), open_volume(device, options, read_only=True) as volume:
        out(unlock_with_options(volume, device, options).hex())
