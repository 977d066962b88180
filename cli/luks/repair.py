"""`volumed luks repair DEVICE`: rewrite a bad or stale header copy from the good one (cryptsetup repair)."""

from __future__ import annotations

from typing import Any

import click

from ._common import device_options, luks_errors, open_volume, out


@click.command("repair")
@click.argument("device", type=click.Path(dir_okay=False))
@device_options
@click.option("-q", "--batch-mode", is_flag=True, help="Accepted for cryptsetup compatibility; never asks.")
def repair(device: str, batch_mode: bool, **options: Any) -> None:
    """Rewrite DEVICE's invalid or stale LUKS2 header copy from the valid one. Reads (dump, test-key,
    volume-key) never write; a key or token change repairs too, under the same rule.

    Refused (exit 1, nothing written) when the device carries any signature besides LUKS (an ext4 with a
    stale LUKS2 secondary header in it), or when the primary header area holds data that is neither a LUKS
    header nor zeros. cryptsetup repair warns and writes there. Exit 0 also when there is nothing to repair.
    """
    with luks_errors(device), open_volume(device, options) as volume:
        problems = volume.header_problems
        if volume.repair():
            out(f"LUKS2 header repaired ({'; '.join(problems)}).")
        else:
            out("No known problems detected for LUKS header.")
