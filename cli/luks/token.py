"""`volumed luks token import|export|remove DEVICE --token-id N`: manage LUKS2 tokens (cryptsetup token)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from ._common import EXIT_BAD_ARGUMENTS, F, device_options, fail, luks_errors, open_volume, out

if TYPE_CHECKING:
    from collections.abc import Callable


def _token_id_option(required: bool) -> Callable[[F], F]:
    return click.option("--token-id", type=int, required=required, default=None, help="Token id (0..31).")


@click.group()
def token() -> None:
    """Import, export or remove LUKS2 tokens."""


@token.command("import")
@click.argument("device", type=click.Path(dir_okay=False))
@_token_id_option(False)
@click.option("--json-file", default=None, help="Token JSON file (default: stdin).")
@click.option("--token-replace", is_flag=True, help="Replace an existing token with the same id.")
@device_options
def import_token(
    device: str, token_id: int | None, json_file: str | None, token_replace: bool, **options: Any
) -> None:
    """Import a token from --json-file or stdin; prints its id."""
    try:
        if json_file is None or json_file == "-":
            text = sys.stdin.read()
        else:
            with open(json_file, encoding="utf-8") as f:
                text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"Failed to read token JSON: {exc}.", EXIT_BAD_ARGUMENTS)
    with luks_errors(device), open_volume(device, options) as volume:
        new_id = volume.import_token(text, token_id=token_id, replace_existing=token_replace)
        out(f"Token {new_id} created.")


@token.command("export")
@click.argument("device", type=click.Path(dir_okay=False))
@_token_id_option(True)
@device_options
def export_token(device: str, token_id: int, **options: Any) -> None:
    """Print a token's JSON."""
    with luks_errors(device), open_volume(device, options, read_only=True) as volume:
        click.echo(volume.export_token(token_id), nl=False)


@token.command("remove")
@click.argument("device", type=click.Path(dir_okay=False))
@_token_id_option(True)
@device_options
def remove_token(device: str, token_id: int, **options: Any) -> None:
    """Remove a token."""
    with luks_errors(device), open_volume(device, options) as volume:
        volume.remove_token(token_id)
