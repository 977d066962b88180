"""`volumed apply-config FILE --mode staged|auto`: replace the machine config of a running or next volumed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

DEFAULT_CONFIG = "/etc/volumed/config.yaml"


class ConfigWriteError(Exception):
    """The config file cannot be written; the message names it and why, and nothing was installed."""


def _write_atomically(target: Path, data: bytes) -> None:
    """Install ``data`` as ``target`` (mode 0600) by a rename, so a reader sees the old or the new config.

    Raises:
        ConfigWriteError: the folder cannot be made or written (a file in the way, a read-only filesystem).
    """
    try:
        _replace_file(target, data)
    except (FileExistsError, NotADirectoryError):
        # mkdir's, when a part of the folder's path is a file
        raise ConfigWriteError(
            f"cannot write {target}: a file is in the way of its folder {target.parent}"
        ) from None
    except OSError as exc:
        raise ConfigWriteError(f"cannot write {target}: {exc.strerror}") from None


def _replace_file(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@click.command("apply-config")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mode",
    type=click.Choice(["auto", "staged"]),
    default="auto",
    show_default=True,
    help=(
        "auto: the running volumed applies it at once (its inotify watch sees the rename), or within 12 s"
        " (its 10 s poll, then 2 s unchanged) when that watch is not working (the config directory did not"
        " exist yet); staged:"
        " applied at the next start."
    ),
)
@click.option(
    "--config",
    "target",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="The config file `volumed run --config` reads.",
)
def apply_config(file: Path, mode: str, target: Path) -> None:
    """Validate FILE and install it as the machine config (nothing is written when it is invalid)."""
    from volumed.config import check_config, read_config_file
    from volumed.controllers import staged_path

    try:
        data = read_config_file(file)
    except OSError as exc:
        click.echo(f"{file}: cannot read: {exc.strerror}; nothing applied", err=True)
        raise SystemExit(1) from None
    machine, issues = check_config(data)
    if machine is None or issues:
        for issue in issues:
            click.echo(str(issue), err=True)
        click.echo(f"{file}: invalid ({len(issues)} errors); nothing applied", err=True)
        raise SystemExit(1)
    destination = staged_path(target) if mode == "staged" else target
    try:
        _write_atomically(destination, data)
    except ConfigWriteError as exc:
        click.echo(f"{exc}; nothing applied", err=True)
        raise SystemExit(1) from None
    if mode == "staged":
        click.echo(f"staged {file} as {destination}: applied at the next start of volumed")
    else:
        click.echo(f"applied {file} to {destination}")
