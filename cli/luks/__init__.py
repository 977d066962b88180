"""`volumed luks`: a cryptsetup-like tool over volumed's LUKS2 library, with cryptsetup's flags and exits."""

from __future__ import annotations

from typing import Any

import click

from .add_key import add_key
from .change_key import change_key
from .config import config
from .dump import dump
from .format import format_cmd
from .kill_slot import kill_slot
from .read import read_cmd
from .repair import repair
from .test_key import test_key
from .token import token
from .volume_key import volume_key
from .write import write_cmd


class _BadArguments(click.UsageError):
    exit_code = 1


class _LuksGroup(click.Group):
    """Bad arguments exit with 1, as cryptsetup's do (click's default is 2, which means "no key" here)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _BadArguments(exc.message, exc.ctx) from None


@click.group(cls=_LuksGroup, context_settings={"help_option_names": ["--help"]})
def luks() -> None:
    """LUKS2 volumes: format, inspect, unlock, manage key slots and tokens (cryptsetup-compatible).

    Exit status as cryptsetup: 0 ok, 1 bad arguments, 2 no key available with this passphrase,
    4 wrong device, 5 busy.
    """
    from volumed.storage.activation import forbid_core_dumps

    # The commands read passphrases and volume keys (read, write, volume-key, test-key, add-key, change-key,
    # format...): a core of the process would hold them.
    forbid_core_dumps()


for _command in (
    format_cmd,
    dump,
    test_key,
    add_key,
    change_key,
    kill_slot,
    volume_key,
    token,
    config,
    read_cmd,
    write_cmd,
    repair,
):
    luks.add_command(_command)
