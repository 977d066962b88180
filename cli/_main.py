"""The root `volumed` group: registers every command group by import path."""

from __future__ import annotations

import sys

import click

from ._lazy import LazyGroup

# One entry per command group; each module defines the group or command named after the colon.
COMMANDS: dict[str, str] = {
    "kms": "volumed.cli.kms:kms",
    "disk": "volumed.cli.disk:disk",
    "wipe": "volumed.cli.wipe:wipe",
    "luks": "volumed.cli.luks:luks",
    "config": "volumed.cli.config:config",
    "meta": "volumed.cli.meta:meta",
    "get": "volumed.cli.get:get",
    "watch": "volumed.cli.get:watch",
    "metrics": "volumed.cli.get:metrics",
    "graph": "volumed.cli.get:graph",
    "run": "volumed.cli.run:run",
    "demo": "volumed.cli.demo:demo",
    "apply-config": "volumed.cli.apply_config:apply_config",
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="volumed", prog_name="volumed")  # resolved only for --version
def volumed() -> None:
    """volumed: encrypted volumes for an OS image's init, converged by controllers."""


def main() -> None:
    try:
        volumed(prog_name="volumed")
    except ImportError as error:
        from volumed.keys import MissingExtraError  # here only: volumed.keys is not light to import

        if not isinstance(error, MissingExtraError):
            raise
        click.echo(f"Error: {error}", err=True)  # a command of an extra that is not installed: no traceback
        sys.exit(1)
