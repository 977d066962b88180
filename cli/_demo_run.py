"""The two boots of `volumed demo`: converge, write (first) or check (second) a file on each volume."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
import click

from volumed.controllers import SubsystemOptions, build_subsystem, running, wait_settled
from volumed.resources import BLOCK, MountStatusDefinition, MountStatusSpec
from volumed.runtime import Kind

from ._run_loop import print_statuses

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.storage.activation import BackendChoice

SETTLE_TIMEOUT = 300.0


async def _boot(
    number: int, workdir: Path, config: Path, disks: list[str], node_uuid: str, backend: BackendChoice
) -> bool:
    options = SubsystemOptions(
        config=config,
        disks=disks,
        backend=backend,
        root=workdir / "root",
        state_dir=workdir / "run",
        node_uuid=node_uuid,
        retry_interval=2.0,
    )
    subsystem = build_subsystem(options)
    started = time.monotonic()
    click.echo(f"\n== boot {number}")
    async with running(subsystem):
        with anyio.move_on_after(SETTLE_TIMEOUT):
            snapshot = await wait_settled(subsystem.state)
            click.echo(f"settled in {time.monotonic() - started:.1f} s")
            print_statuses(snapshot)
            mounts = await subsystem.state.list(Kind(BLOCK, MountStatusDefinition.type))
            ok = snapshot.ok
            for mount in mounts:
                spec: MountStatusSpec = mount.spec
                marker = anyio.Path(spec.target) / "volumed-demo.txt"
                if number == 1:
                    await marker.write_text(f"written by volumed on boot 1 to {spec.volume_id}\n")
                    click.echo(f"wrote {marker}")
                else:
                    present = await marker.exists()
                    ok = ok and present
                    click.echo(f"{marker}: {'found' if present else 'MISSING'}")
            return ok
    click.echo(f"boot {number} did not settle within {SETTLE_TIMEOUT:.0f} s", err=True)
    return False


def _print_tables(disks: list[str]) -> None:
    from volumed.storage.gpt import GPTError, read_partition_table

    from .disk import print_table

    click.echo("\npartition tables after the first boot:")
    for disk in disks:
        try:
            print_table(disk, read_partition_table(disk))
        except (GPTError, OSError) as exc:
            click.echo(f"{disk}: {exc}")


async def boot_twice(
    workdir: Path, config: Path, disks: list[str], node_uuid: str, backend: BackendChoice
) -> bool:
    """First boot provisions, encrypts and formats; second boot opens and finds the files. Everything is
    closed after. The partition tables the first boot ended with are shown."""
    first = await _boot(1, workdir, config, disks, node_uuid, backend)
    if first:
        await anyio.to_thread.run_sync(_print_tables, disks)
    second = first and await _boot(2, workdir, config, disks, node_uuid, backend)
    click.echo(
        "\nall volumes ready on both boots, files intact" if second else "\nthe demo FAILED", err=not second
    )
    return second
