"""`volumed luks kill-slot DEVICE N`: wipe a key slot (cryptsetup luksKillSlot)."""

from __future__ import annotations

from typing import Any

import click

from ._common import device_options, luks_errors, open_volume


@click.command("kill-slot")
@click.argument("device", type=click.Path(dir_okay=False))
@click.argument("slot", type=click.IntRange(0, 31))
@device_options
@click.option("-q", "--batch-mode", is_flag=True, help="Accepted for cryptsetup compatibility; never asks.")
def kill_slot(device: str, slot: int, batch_mode: bool, **options: Any) -> None:
    """Wipe key slot SLOT of DEVICE and remove it from digests and tokens."""
    with luks_errors(device), open_volume(device, options) as volume:
        volume.kill_slot(slot)
