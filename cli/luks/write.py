"""`volumed luks write DEVICE`: stdin, encrypted, into the payload."""

from __future__ import annotations

import io
import os
import stat
import sys
from typing import TYPE_CHECKING, Any, BinaryIO

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

if TYPE_CHECKING:
    from volumed.storage.luks2.payload import PayloadStream

COPY_CHUNK = 1 << 20


def input_size(source: BinaryIO) -> int | None:
    """Bytes left to read on ``source`` when it is a regular file; ``None`` for a pipe, terminal, socket."""
    try:
        st = os.fstat(source.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None
        return max(0, st.st_size - source.tell())
    except (OSError, io.UnsupportedOperation):
        return None


def _payload_room(stream: PayloadStream, data_offset: int) -> str:
    """The payload's room for the input, for messages: its size, and what is left from --data-offset."""
    if not data_offset:
        return f"the payload ({stream.size} bytes)"
    return f"the payload ({max(0, stream.size - data_offset)} bytes from --data-offset {data_offset})"


def copy_into(source: BinaryIO, stream: PayloadStream, data_offset: int) -> None:
    """Copy ``source`` into the payload from ``data_offset``.

    Input whose size is known (a regular file) and does not fit is refused before anything is written. A
    pipe's size is known only at its end: what fitted before the overflowing chunk has been written by
    then, and the error says how much.
    """
    room = max(0, stream.size - data_offset)
    size = input_size(source)
    if size is not None and size > room:
        fail(
            f"the input ({size} bytes) is larger than {_payload_room(stream, data_offset)}; "
            "nothing was written.",
            EXIT_BAD_ARGUMENTS,
        )
    stream.seek(data_offset)
    written = 0
    while chunk := source.read(COPY_CHUNK):
        if written + len(chunk) > room:
            fail(
                f"the input is larger than {_payload_room(stream, data_offset)}; its first {written} bytes "
                "were written, the rest was not.",
                EXIT_BAD_ARGUMENTS,
            )
        stream.write(chunk)
        written += len(chunk)
    stream.flush()


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
    """Encrypt stdin into DEVICE's data segment (from --data-offset). Needs --key-file: stdin is the data.

    Input from a file that does not fit is refused before anything is written; from a pipe, what fitted is
    written and the error says how many bytes that was.
    """
    if options["key_file"] is None or options["key_file"] == "-":
        fail("write reads the data from stdin: give the passphrase with --key-file FILE.", EXIT_BAD_ARGUMENTS)
    with luks_errors(device), open_volume(device, options) as volume:
        key = unlock_with_options(volume, device, options, prompt=False)
        with volume.payload(key) as stream:
            copy_into(sys.stdin.buffer, stream, data_offset)
