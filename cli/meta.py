"""`volumed meta dump|get|set|delete|repair DEVICE [TAG]`: the Talos META partition (ADV) tool."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from collections.abc import Callable

    from volumed.storage.meta import MetaContents, MetaPartition

T = TypeVar("T")

EXIT_ERROR = 1
EXIT_WRONG_DEVICE = 4
EXIT_BUSY = 5
_PREVIEW = 48


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(code)


def _parse_offset(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    from volumed.config import parse_size

    try:
        return parse_size(value).value
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _parse_tag(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    from volumed.storage.meta import parse_tag

    try:
        return parse_tag(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


_device = click.argument("device", type=click.Path())  # opened by the command: a bad device exits 4
_tag = click.argument("tag", callback=_parse_tag)
_offset = click.option(
    "--offset",
    default="0",
    callback=_parse_offset,
    metavar="BYTES",
    help="Where META starts inside DEVICE (e.g. 1MiB for a META partition inside a disk image).",
)
_force = click.option(
    "--force", is_flag=True, help="Write even if DEVICE holds no valid META and is not blank."
)


def _open(device: str, offset: int, *, writable: bool = False) -> MetaPartition:
    """META at ``offset`` of ``device``; to write, only if no running `volumed run` owns its disk (exit 5)."""
    from volumed.storage.meta import MetaPartition

    if writable:
        from volumed.storage import disklayout

        try:
            disklayout.check_disk_not_owned(device)
        except disklayout.DeviceBusyError as exc:
            _fail(str(exc), EXIT_BUSY)
    return MetaPartition(device, offset=offset)


def _run(action: Callable[[], T]) -> T:
    from volumed.storage.meta import MetaCorruptError, MetaDeviceError, MetaError

    try:
        return action()
    except (MetaDeviceError, MetaCorruptError) as error:
        _fail(str(error), EXIT_WRONG_DEVICE)
    except MetaError as error:
        _fail(str(error))


def _preview(tag: int, value: bytes) -> str:
    """A one-line view of a value; tag 9 is summarised so static passphrases are not printed."""
    from volumed.storage.meta import MetaTag

    if tag == MetaTag.STATE_ENCRYPTION_CONFIG:
        from volumed.config import MetaEncryptionError, encryption_from_meta_json

        try:
            spec = encryption_from_meta_json(value)
        except MetaEncryptionError as error:
            return f"<invalid: {error}>"
        if spec is None:
            return "no encryption"
        keys = ", ".join(f"slot {key.slot} {'+'.join(key.kinds)}" for key in spec.sorted_keys())
        return f"{spec.effective_provider} {spec.effective_cipher}; keys: {keys}"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text.isprintable():
        return text if len(text) <= _PREVIEW else text[: _PREVIEW - 3] + "..."
    hexed = value.hex()
    return hexed if len(hexed) <= _PREVIEW else hexed[: _PREVIEW - 3] + "..."


def _dump_text(device: str, offset: int, contents: MetaContents) -> None:
    from volumed.storage.meta import tag_name

    from ._columns import column_widths, format_rows

    click.echo(f"META {device} at offset {offset}: {contents.state}")
    for index, copy in enumerate(contents.copies):
        click.echo(
            f"copy {index} at {copy.offset}: {'valid' if copy.valid else 'invalid: ' + str(copy.error)}"
        )
    click.echo(f"free: {contents.free_bytes} bytes")
    if not contents.tags:
        click.echo("no tags")
        return
    header = ["TAG", "NAME", "SIZE", "VALUE"]
    rows = [
        [f"0x{tag:02x}", tag_name(tag), str(len(contents.tags[tag])), _preview(tag, contents.tags[tag])]
        for tag in sorted(contents.tags)
    ]
    for line in format_rows(header, rows, column_widths(header, rows), right={2}):
        click.echo(line)


@click.group()
def meta() -> None:
    """The META partition (Talos ADV): a small tag -> value store kept twice with a checksum."""


@meta.command()
@_device
@_offset
def dump(device: str, offset: int) -> None:
    """Show the state of both copies and every tag of DEVICE (tag 9 summarised without secrets)."""
    partition = _open(device, offset)
    contents = _run(partition.read)
    _dump_text(device, offset, contents)


@meta.command()
@_device
@_tag
@_offset
def get(device: str, tag: int, offset: int) -> None:
    """Print the raw value of TAG (decimal, 0x hex or a name) on stdout; exit 1 when it is not set."""
    partition = _open(device, offset)
    value = _run(lambda: partition.get(tag))
    if value is None:
        from volumed.storage.meta import MetaState

        if _run(partition.read).state is MetaState.CORRUPT:  # unknown, not unset
            _fail(
                f"META is corrupt (no valid copy): tag 0x{tag:02x} is unknown; see `volumed meta dump`",
                EXIT_WRONG_DEVICE,
            )
        _fail(f"tag 0x{tag:02x} is not set")
    sys.stdout.flush()
    sys.stdout.buffer.write(value)
    sys.stdout.buffer.flush()


def _value_bytes(value: str) -> bytes:
    """VALUE as UTF-8. Bytes that are not UTF-8 reach Python as lone surrogates, which cannot be encoded:
    refuse them (without echoing the value, which may be a secret) and point at --value-file."""
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        _fail("VALUE is not valid UTF-8 text; give other bytes with --value-file FILE")


@meta.command(name="set")
@_device
@_tag
@click.argument("value", required=False)
@click.option(
    "--value-file", type=click.Path(exists=True, dir_okay=False), help="Read the value from a file."
)
@_offset
@_force
def set_(device: str, tag: int, value: str | None, value_file: str | None, offset: int, force: bool) -> None:
    """Set TAG to VALUE (or the bytes of --value-file)."""
    from pathlib import Path

    if (value is None) == (value_file is None):
        raise click.UsageError("give exactly one of VALUE and --value-file")
    if value_file is not None:
        try:
            data = Path(value_file).read_bytes()
        except OSError as error:
            _fail(f"cannot read {value_file}: {error.strerror}")
    else:
        data = _value_bytes(value or "")
    partition = _open(device, offset, writable=True)
    changed = _run(lambda: partition.set(tag, data, force=force))
    click.echo(f"tag 0x{tag:02x} {'set' if changed else 'unchanged'} ({len(data)} bytes)")


@meta.command()
@_device
@_tag
@_offset
@_force
def delete(device: str, tag: int, offset: int, force: bool) -> None:
    """Delete TAG (nothing is written when it is not set)."""
    partition = _open(device, offset, writable=True)
    deleted = _run(lambda: partition.delete(tag, force=force))
    click.echo(f"tag 0x{tag:02x} {'deleted' if deleted else 'was not set'}")


@meta.command()
@_device
@_offset
def repair(device: str, offset: int) -> None:
    """Rewrite an invalid copy from the valid one."""
    partition = _open(device, offset, writable=True)
    repaired = _run(partition.repair)
    click.echo("repaired" if repaired else "nothing to repair")
