"""`volumed disk`: disk images for trying volumed out (`disk create IMAGE --size SIZE`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from volumed.storage.gpt import PartitionTable


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(code)


def print_table(image: str, table: PartitionTable) -> None:
    """The table as `disk create` and the demo show it: a line for the disk, one per partition."""
    from volumed.storage.blockdev import format_size

    ss = table.sector_size
    click.echo(f"{image}: {format_size(table.disk_size)}, GPT, {ss}-byte sectors")
    click.echo(f"{'#':>2}  {'LABEL':<10} {'START':>10} {'SIZE':>10}  TYPE")
    for p in table.partitions:
        start, length = format_size(p.offset(ss)), format_size(p.size(ss))
        click.echo(f"{p.number:>2}  {p.name:<10} {start:>10} {length:>10}  {p.type_guid}")


@click.group()
def disk() -> None:
    """Disk images with the Talos partition layout."""


@disk.command("create")
@click.argument("image", type=click.Path(dir_okay=False))
@click.option(
    "--size",
    required=True,
    help="Disk size, e.g. 2GiB, 512MiB or a byte count (units as in the machine config: GiB is 2^30, G and "
    "GB 10^9).",
)
@click.option(
    "--layout",
    type=click.Choice(["installer", "system"]),
    default="installer",
    show_default=True,
    help="installer: EFI, BIOS, BOOT and META as Talos' installer makes them (the first boot provisions "
    "STATE and EPHEMERAL); system: META, STATE and EPHEMERAL, as a system disk after its first boot.",
)
@click.option(
    "--state-size",
    default="100MiB",
    show_default=True,
    help="Size of the STATE partition (--layout system only).",
)
@click.option(
    "--sector-size",
    type=click.Choice(["512", "4096"]),
    default="512",
    show_default=True,
    help="Logical sector size.",
)
@click.option("--force", is_flag=True, help="Overwrite IMAGE if it exists and is not empty.")
def create(image: str, size: str, layout: str, state_size: str, sector_size: str, force: bool) -> None:
    """Create IMAGE, a sparse GPT disk image laid out as Talos' installer leaves a system disk.

    --layout installer (the default): EFI (100 MiB), BIOS (1 MiB), BOOT (2000 MiB) and META (1 MiB), 1 MiB
    aligned, the rest free: the first `volumed run` with a machine config makes STATE (100 MiB) and EPHEMERAL
    (at least 2 GiB, all the rest) there, as Talos' first boot does. --layout system: META (1 MiB), STATE and
    EPHEMERAL (the rest). Nothing is formatted: volumed does that on first run.
    """
    from volumed.config import parse_size
    from volumed.storage import disklayout
    from volumed.storage.blockdev import format_size
    from volumed.storage.gpt import GPTError

    source = click.get_current_context().get_parameter_source("state_size")
    if layout == disklayout.INSTALLER_LAYOUT and source is not click.core.ParameterSource.DEFAULT:
        _fail("--state-size is for --layout system: with the installer layout STATE is made at first boot")
        return
    try:
        # One rule for sizes everywhere: the machine config's (Talos'), where G is 10^9 and GiB 2^30.
        disk_size = parse_size(size).value
        state = parse_size(state_size).value
    except ValueError as exc:
        _fail(str(exc))
        return
    try:
        table = disklayout.create_disk_image(
            image, disk_size, state_size=state, sector_size=int(sector_size), force=force, layout=layout
        )
    except (disklayout.DiskLayoutError, GPTError, OSError) as exc:
        _fail(str(exc))
        return
    click.echo("Created ", nl=False)
    print_table(image, table)
    if layout == disklayout.INSTALLER_LAYOUT:
        free = disklayout.largest_allocatable(table)
        needed = disklayout.STATE_SIZE + disklayout.TALOS_EPHEMERAL_MIN_SIZE
        short = "" if free >= needed else f" - too small: {format_size(needed)} needed"
        click.echo(
            f"Free: {format_size(free)} for STATE (100 MiB) and EPHEMERAL (at least 2 GiB), made at first"
            f" boot{short}"
        )
