"""`volumed luks read DEVICE`: the decrypted payload to stdout."""

from __future__ import annotations

import shutil
import sys
from typing import Any

import click

from ._common import (
    device_options,
    key_file_option,
    key_slot_option,
    luks_errors,
    open_volume,
    unlock_with_options,
)

COPY_CHUNK = 1 << 20


@click.command("read")
@click.argument("device", type=click.Path(dir_okay=False))
@key_file_option
@key_slot_option
@device_options
def read_cmd(device: str, **options: Any) -> None:
    """Write DEVICE's decrypted data segment to stdout (the whole segment)."""
    with luks_errors(device), open_volume(device, options, read_only=True) as volume:
        key = unlock_with_options(volume, device, options)
        with volume.payload(key) as stream:
            shutil.copyfileobj(stream, sys.stdout.buffer, COPY_CHUNK)
        sys.stdout.buffer.flush()
