"""`volumed luks config DEVICE`: key slot priority, label and subsystem (cryptsetup config)."""

from __future__ import annotations

from typing import Any

import click

from ._common import EXIT_BAD_ARGUMENTS, device_options, fail, key_slot_option, luks_errors, open_volume

PRIORITIES = {"ignore": 0, "normal": None, "prefer": 2}


@click.command("config")
@click.argument("device", type=click.Path(dir_okay=False))
@click.option(
    "--priority",
    type=click.Choice(list(PRIORITIES)),
    default=None,
    help="Key slot priority (needs --key-slot): prefer tries it first, ignore only when named.",
)
@key_slot_option
@click.option("--label", default=None, help="New header label.")
@click.option("--subsystem", default=None, help="New header subsystem.")
@device_options
def config(
    device: str, priority: str | None, label: str | None, subsystem: str | None, **options: Any
) -> None:
    """Set a key slot's priority and/or the header label and subsystem."""
    if priority is None and label is None and subsystem is None:
        fail("Nothing to change: give --priority, --label or --subsystem.", EXIT_BAD_ARGUMENTS)
    if priority is not None and options["key_slot"] is None:
        fail("--priority needs --key-slot.", EXIT_BAD_ARGUMENTS)
    with luks_errors(device), open_volume(device, options) as volume:
        if priority is not None:
            volume.set_priority(options["key_slot"], PRIORITIES[priority])
        if label is not None or subsystem is not None:
            volume.set_label(label=label, subsystem=subsystem)
