"""`volumed luks write DEVICE`: stdin, encrypted, into the payload."""

from __future__ import annotations

import sys
from typing import Any

import click

from ._common import (
    EXIT_BAD_ARGUMENTS,
    device_options,
    fail,
    key_file_option,
    key_slot_option,
    luks_errors,
    open_volume,
    unlock_with_options,
)

COPY_CHUNK = 1 << 20


@click.command("write")
@click.argument("device", type=click.Path(dir_okay=False))
@key_file_option
@key_slot_option
@device_options
@click.option(
    "--data-offset",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Byte position inside the decrypted payload where writing starts.",
)
def write_cmd(device: str, data_offset: int, **options: Any) -> None:
    """Encrypt stdin into DEVICE's data segment (from --data-offset). Needs --key-file: stdin is the data."""
    if options["key_file"] is None or options["key_file"] == "-":
        fail("write reads the data from stdin: give the passphrase with --key-file FILE.", EXIT_BAD_ARGUMENTS)
    with luks_errors(device), open_volume(device, options) as volume:
        key = unlock_with_options(volume, device, options, prompt=False)
        with volume.payload(key) as stream:
            stream.seek(data_offset)
            while chunk := sys.stdin.buffer.read(COPY_CHUNK):
                if stream.tell() + len(chunk) > stream.size:
                    fail(f"the input is larger than the payload ({stream.size} bytes)", EXIT_BAD_ARGUMENTS)
                stream.write(chunk)
            stream.flush()
