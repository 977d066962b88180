"""User volumes of one wave are provisioned concurrently: each gets its own partition, the table stays valid.

Before provisioning was serialised, volumes read the same table and wrote it back one over the other: two
volumes shared a region and GPT entries were lost (found by bench/boot.py --provision).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import anyio

from tests._tools import require_root, require_tool
from volumed.controllers import SubsystemOptions, build_subsystem, running, wait_settled
from volumed.resources import VolumePhase
from volumed.storage import disklayout
from volumed.storage.gpt import new_table, read_partition_table, write_partition_table

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024
VOLUMES = 6


def config_text() -> str:
    documents = [
        f"""apiVersion: v1alpha1
kind: UserVolumeConfig
name: v{i}
provisioning:
  diskSelector:
    match: "!system_disk"
  minSize: 16MiB
  maxSize: 16MiB
filesystem:
  type: ext4
"""
        for i in range(VOLUMES)
    ]
    return "---\n".join(documents)


async def test_one_partition_per_volume(tmp_path: Path) -> None:
    require_root()
    require_tool("mkfs.ext4")
    system, data = tmp_path / "system.img", tmp_path / "data.img"
    disklayout.create_disk_image(system, 512 * MIB)
    with data.open("wb") as f:
        f.truncate(256 * MIB)
    write_partition_table(data, new_table(256 * MIB))
    config = tmp_path / "config.yaml"
    config.write_text(config_text())
    options = SubsystemOptions(
        config=config,
        disks=[str(system), str(data)],
        backend="fuse",
        root=tmp_path / "root",
        state_dir=tmp_path / "run",
        node_uuid="7d1b0f5e-2c4a-4e8b-9f3d-6a5c4b3e2d1f",
        retry_interval=1.0,
    )
    subsystem = build_subsystem(options)
    async with running(subsystem):
        with anyio.fail_after(120):
            snapshot = await wait_settled(subsystem.state)
    users = {v: s for v, s in snapshot.statuses.items() if v.startswith("u-")}
    assert len(users) == VOLUMES
    assert all(s.phase == VolumePhase.READY for s in users.values()), {
        v: s.error_message for v, s in users.items()
    }
    offsets = sorted(s.offset for s in users.values())
    assert len(set(offsets)) == VOLUMES
    assert all(b - a >= 16 * MIB for a, b in itertools.pairwise(offsets))
    table = read_partition_table(data)
    assert sorted(p.name for p in table.partitions) == sorted(f"u-v{i}" for i in range(VOLUMES))
    assert not table.damage
