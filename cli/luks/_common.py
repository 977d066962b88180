"""Shared pieces of `volumed luks`: exit codes, error mapping, passphrase input, options."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from volumed.storage.luks2 import KdfSettings, Luks2Volume, VolumeKey

EXIT_OK = 0
EXIT_BAD_ARGUMENTS = 1
EXIT_NO_KEY = 2
EXIT_WRONG_DEVICE = 4
EXIT_BUSY = 5

F = TypeVar("F", bound=Callable[..., Any])


def out(text: str) -> None:
    """Command output (stdout)."""
    click.echo(text)


def fail(message: str, code: int) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code`` (cryptsetup's codes)."""
    click.echo(message, err=True)
    raise SystemExit(code)


@contextmanager
def luks_errors(device: str) -> Iterator[None]:
    """Turn library errors into cryptsetup's messages and exit codes; messages never carry secrets."""
    from volumed.storage.luks2 import (
        AmbiguousSignaturesError,
        BusyError,
        ConcurrentUpdateError,
        DeviceError,
        InvalidHeaderError,
        KeyslotNotActiveError,
        KeyslotUnusableError,
        Luks2Error,
        NoKeyError,
        NotLuks2Error,
    )

    try:
        yield
    except KeyslotUnusableError as exc:  # why no slot could be tried: a hash or cipher, never a secret
        fail(f"No usable keyslot is available: {exc}", EXIT_BAD_ARGUMENTS)
    except KeyslotNotActiveError:
        fail("No usable keyslot is available.", EXIT_BAD_ARGUMENTS)
    except NoKeyError:
        fail("No key available with this passphrase.", EXIT_NO_KEY)
    except AmbiguousSignaturesError as exc:
        fail(str(exc), EXIT_BAD_ARGUMENTS)
    except NotLuks2Error:
        fail(f"Device {device} is not a valid LUKS device.", EXIT_BAD_ARGUMENTS)
    except InvalidHeaderError as exc:
        fail(f"Device {device} is not a valid LUKS device: {exc}", EXIT_BAD_ARGUMENTS)
    except DeviceError as exc:
        if _is_missing_or_inaccessible(device):
            fail(f"Device {device} does not exist or access denied: {exc}", EXIT_WRONG_DEVICE)
        fail(str(exc), EXIT_WRONG_DEVICE)  # too small, past the end, a missing --header: it names the file
    except (BusyError, ConcurrentUpdateError) as exc:
        fail(str(exc), EXIT_BUSY)
    except Luks2Error as exc:
        fail(str(exc), EXIT_BAD_ARGUMENTS)


def _is_missing_or_inaccessible(device: str) -> bool:
    """Whether DEVICE is absent or unreadable: only then does cryptsetup's "does not exist or access denied"
    fit; other device errors (too small, a missing --header) carry their own message naming the file."""
    return not os.path.exists(device) or not os.access(device, os.R_OK)


def stdin_is_terminal() -> bool:
    """Whether to prompt (a seam for tests: CliRunner's stdin is never a terminal)."""
    return sys.stdin.isatty()


def read_key_file(path: str) -> bytes:
    """A key file's bytes, used byte for byte ("-" is stdin), as cryptsetup does.

    An empty named file is an empty passphrase (cryptsetup accepts it); empty stdin is an error.
    """
    try:
        if path == "-":
            return _refuse_nothing_read(sys.stdin.buffer.read())
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        fail(f"Failed to open key file {path}: {exc.strerror}.", EXIT_BAD_ARGUMENTS)


def read_passphrase(key_file: str | None, prompt: str, *, verify: bool = False) -> bytes:
    """From --key-file, else a hidden prompt on a terminal, else one line of stdin (newline dropped).

    Stdin at end of input before anything was read (``</dev/null``, an empty pipe) is an error, as in
    cryptsetup, not an empty passphrase; a lone newline is the empty passphrase.
    """
    if key_file is not None:
        return read_key_file(key_file)
    if stdin_is_terminal():
        value = click.prompt(prompt, hide_input=True, confirmation_prompt=verify, err=True)
        return str(value).encode("utf-8")
    line = _refuse_nothing_read(sys.stdin.buffer.readline())
    return line[:-1] if line.endswith(b"\n") else line


def _refuse_nothing_read(data: bytes) -> bytes:
    """``data`` read from stdin, or exit 1 with cryptsetup's message when stdin had nothing at all."""
    if not data:
        fail("Nothing to read on input.", EXIT_BAD_ARGUMENTS)
    return data


def unlock_with_options(
    volume: Luks2Volume, device: str, options: dict[str, Any], *, prompt: bool = True
) -> VolumeKey:
    """The volume key from --key-file (or the prompt / stdin), restricted to --key-slot when given."""
    passphrase = read_passphrase(options["key_file"], f"Enter passphrase for {device}" if prompt else "")
    return volume.unlock(passphrase, keyslot=options["key_slot"])


def open_volume(device: str, options: dict[str, Any], *, read_only: bool = False) -> Luks2Volume:
    """Open DEVICE with the common --header / --volume-offset / --volume-size options; to write (not
    ``read_only``), only when no running `volumed run` owns its disk (exit 5, as wipe and format)."""
    from volumed.storage.luks2 import Luks2Volume

    if not read_only:
        refuse_owned_disk(device)
    return Luks2Volume.open(
        device,
        offset=options["volume_offset"],
        size=options["volume_size"],
        header=options["header"],
        read_only=read_only,
    )


def refuse_owned_disk(device: str) -> None:
    """Exit 5 when a running `volumed run` owns the disk ``device`` is on: nothing may be written under it."""
    from volumed.storage import disklayout

    try:
        disklayout.check_disk_not_owned(device)
    except disklayout.DeviceBusyError as exc:
        fail(str(exc), EXIT_BUSY)


def device_options(fn: F) -> F:
    """--header, --volume-offset, --volume-size: where the header and the volume are."""
    fn = click.option("--header", type=click.Path(dir_okay=False), help="Detached header file.")(fn)
    fn = click.option(
        "--volume-offset",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Byte offset of the volume inside DEVICE (a partition of a disk image).",
    )(fn)
    return click.option(
        "--volume-size",
        type=click.IntRange(min=1),
        default=None,
        help="Byte length of the volume inside DEVICE (default: to the end).",
    )(fn)


def key_file_option(fn: F) -> F:
    return click.option(
        "-d", "--key-file", type=str, default=None, help="Read the passphrase from this file ('-' for stdin)."
    )(fn)


def key_slot_option(fn: F) -> F:
    return click.option(
        "-S", "--key-slot", type=click.IntRange(0, 31), default=None, help="Key slot number."
    )(fn)


def pbkdf_options(fn: F) -> F:
    """cryptsetup's --pbkdf* flags for a new key slot."""
    fn = click.option(
        "--pbkdf",
        type=click.Choice(["argon2id", "argon2i", "pbkdf2"]),
        default="argon2id",
        show_default=True,
        help="Key slot KDF.",
    )(fn)
    fn = click.option(
        "--pbkdf-memory",
        type=click.IntRange(min=32),
        default=None,
        help="Argon2 memory cost in KiB (default: benchmarked, at most 1 GiB).",
    )(fn)
    fn = click.option(
        "--pbkdf-force-iterations",
        type=click.IntRange(min=1),
        default=None,
        help="Iterations (pbkdf2) or time cost (argon2); skips the benchmark.",
    )(fn)
    fn = click.option(
        "--pbkdf-parallel",
        type=click.IntRange(1, 4),
        default=None,
        help="Argon2 threads (default: min(4, CPUs)).",
    )(fn)
    fn = click.option(
        "-i",
        "--iter-time",
        type=click.IntRange(min=1),
        default=2000,
        show_default=True,
        help="Benchmark target unlock time in milliseconds.",
    )(fn)
    return click.option(
        "-h", "--hash", "hash_name", default="sha256", show_default=True, help="PBKDF2 and AF hash."
    )(fn)


def new_key_options(fn: F) -> F:
    """DEVICE, --new-key-file and the options of commands that write a key slot (add-key, change-key)."""
    fn = pbkdf_options(fn)
    fn = device_options(fn)
    fn = key_slot_option(fn)
    fn = key_file_option(fn)
    fn = click.option(
        "--new-key-file", required=True, help="File holding the new passphrase (used byte for byte)."
    )(fn)
    return click.argument("device", type=click.Path(dir_okay=False))(fn)


def kdf_settings(options: dict[str, Any]) -> KdfSettings:
    from volumed.storage.luks2 import KdfSettings

    return KdfSettings(
        type=options["pbkdf"],
        hash=options["hash_name"],
        iterations=options["pbkdf_force_iterations"],
        memory_kib=options["pbkdf_memory"],
        parallel=options["pbkdf_parallel"],
        target_ms=options["iter_time"],
    )
