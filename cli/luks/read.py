"""`volumed luks read DEVICE`: the decrypted payload to stdout."""

from __future__ import annotations

import io
import os
import sys
from contextlib import contextmanager, suppress
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
    from collections.abc import Iterator

    from volumed.storage.luks2 import Luks2Volume

COPY_CHUNK = 1 << 20


@contextmanager
def _stdout_errors() -> Iterator[None]:
    """Stop cleanly when stdout refuses data: quietly when its reader went away (``| head``), else say why.

    stdout is pointed at /dev/null first, so the interpreter's last flush of what is still buffered cannot
    fail a second time with a traceback.
    """
    try:
        yield
    except OSError as error:
        with suppress(OSError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        if isinstance(error, BrokenPipeError):
            raise SystemExit(EXIT_BAD_ARGUMENTS) from None
        fail(f"Cannot write the payload to stdout: {error.strerror}.", EXIT_BAD_ARGUMENTS)


def _write_all(stdout: BinaryIO, data: bytes) -> None:
    """Write all of ``data``: unbuffered stdout (``PYTHONUNBUFFERED``) is a raw file whose writes may be
    partial, as when a pipe's reader goes away mid-write, and the rest would be silently dropped."""
    view = memoryview(data)
    while view:
        view = view[stdout.write(view) or 0 :]


def copy_to_stdout(stream: io.RawIOBase, stdout: BinaryIO) -> None:
    """Copy ``stream`` to ``stdout``; a failing stdout (full disk, closed pipe) ends the command cleanly."""
    while chunk := stream.read(COPY_CHUNK):
        with _stdout_errors():
            _write_all(stdout, chunk)
    with _stdout_errors():
        stdout.flush()


def check_segment_on_device(volume: Luks2Volume, device: str) -> None:
    """Refuse a data segment that starts at or past the end of the device, or (with a fixed size) ends past
    it: the payload would be read empty or short and the command would still succeed (cryptsetup refuses to
    activate such a device as too small)."""
    segment, size = volume.segment, volume.data_region.size
    end = segment.offset + (segment.size or 0)
    if segment.offset >= size:
        fail(
            f"{device}: the data segment starts at byte {segment.offset}, at or past the end of the device "
            f"({size} bytes): no data to read.",
            EXIT_BAD_ARGUMENTS,
        )
    if end > size:
        fail(
            f"{device}: the data segment (bytes {segment.offset} to {end}) ends past the end of the device "
            f"({size} bytes).",
            EXIT_BAD_ARGUMENTS,
        )


@click.command("read")
@click.argument("device", type=click.Path(dir_okay=False))
@key_file_option
@key_slot_option
@device_options
def read_cmd(device: str, **options: Any) -> None:
    """Write DEVICE's decrypted data segment to stdout (the whole segment)."""
    with luks_errors(device), open_volume(device, options, read_only=True) as volume:
        check_segment_on_device(volume, device)
        key = unlock_with_options(volume, device, options)
        with volume.payload(key) as stream:
            copy_to_stdout(stream, sys.stdout.buffer)
