"""`volumed demo`: the volume subsystem on disk images it creates, booted twice, with the result shown."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

if TYPE_CHECKING:
    from volumed.storage.activation import BackendChoice

DEMO_CONFIG = """\
# STATE and EPHEMERAL encrypted with a key derived from the node UUID; a user volume on a second disk with a
# static passphrase locked to STATE (its key is useless without the salt kept on STATE).
apiVersion: v1alpha1
kind: VolumeConfig
name: STATE
encryption:
  provider: luks2
  keys:
    - nodeID: {}
      slot: 0
  pbkdf: {type: argon2id, memory: 65536, iterations: 4, parallel: 2}
---
apiVersion: v1alpha1
kind: VolumeConfig
name: EPHEMERAL
encryption:
  provider: luks2
  keys:
    - nodeID: {}
      slot: 0
  pbkdf: {type: argon2id, memory: 65536, iterations: 4, parallel: 2}
---
apiVersion: v1alpha1
kind: UserVolumeConfig
name: data
provisioning:
  diskSelector:
    match: "!system_disk"
  minSize: 64MiB
  grow: true
filesystem:
  type: ext4
encryption:
  provider: luks2
  keys:
    - static:
        passphrase: demo-passphrase
      slot: 0
      lockToSTATE: true
  pbkdf: {type: argon2id, memory: 65536, iterations: 4, parallel: 2}
"""

MIB = 1024 * 1024


def _prepare(workdir: Path) -> tuple[Path, list[str], str]:
    from volumed.storage import disklayout
    from volumed.storage.gpt import new_table, write_partition_table

    workdir.mkdir(parents=True, exist_ok=True)
    node = workdir / "node.img"
    data = workdir / "data.img"
    disklayout.create_disk_image(node, 1024 * MIB, force=True)
    with data.open("wb") as f:
        f.truncate(256 * MIB)
    write_partition_table(data, new_table(256 * MIB))
    config = workdir / "config.yaml"
    config.write_text(DEMO_CONFIG)
    node_uuid = str(uuid.uuid4())
    (workdir / "node-uuid").write_text(node_uuid)
    return config, [str(node), str(data)], node_uuid


@click.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/tmp/volumed-demo"),
    show_default=True,
    help="Where the disk images, config and mount root go (recreated).",
)
@click.option("--backend", type=click.Choice(["auto", "dm", "fuse"]), default="auto", show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="Show the subsystem's log.")
def demo(workdir: Path, backend: str, verbose: bool) -> None:
    """Create two disk images and a config, boot the volume subsystem twice and show what it did.

    First boot: STATE and EPHEMERAL are encrypted (nodeID keys) and formatted, the user volume's partition is
    made on the second disk, encrypted with a key locked to STATE, and all three are mounted under
    WORKDIR/root; a file is written on each. Second boot: everything opens again and the files are read back.
    """
    import anyio

    from ._demo_run import boot_twice
    from ._logging import configure_logging

    configure_logging(verbose=verbose)
    if not verbose:
        import logging

        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    config, disks, node_uuid = _prepare(workdir)
    click.echo(f"disk images: {', '.join(disks)}")
    click.echo(f"config: {config}  node UUID: {node_uuid}")
    ok = anyio.run(boot_twice, workdir, config, disks, node_uuid, cast("BackendChoice", backend))
    raise SystemExit(0 if ok else 1)
