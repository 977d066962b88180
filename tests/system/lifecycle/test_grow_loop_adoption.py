"""volumed killed and started again (no reboot) after it grew an unencrypted user volume's partition on an
image-file disk: the loop device the killed runs left over the volume (mounted, of the old size) is adopted
and resized to the grown partition, not doubled by a second loop device of the new size (whose mount then
failed: 'already a mount point of /dev/loopN'). The cut is the grow fault hook (VOLUMED_GROW_CRASH_AFTER).
"""

from __future__ import annotations

import os
import subprocess
from functools import partial
from typing import TYPE_CHECKING, Final

import anyio.to_thread
import pytest

from tests.system.lifecycle._node import MIB, describe, user_volume_config, volume_config
from tests.system.lifecycle.test_kill_9 import RUN_LIMIT, KillPoint, run_and_kill
from volumed.controllers.block._grow import CRASH_ENV
from volumed.storage import loop
from volumed.storage.filesystem import find_mount
from volumed.storage.gpt import grow_partition_on_disk, read_partition_table

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

GROWN_DATA_DISK: Final = 384 * MIB


def data_partition(node: Node) -> tuple[int, int]:
    table = read_partition_table(node.data_disk)
    partition = table.find("u-data")
    assert partition is not None
    return partition.offset(table.sector_size), partition.size(table.sector_size)


def loops_over(node: Node, offset: int) -> list[loop.LoopDevice]:
    return loop.find_attachments(node.data_disk, offset=offset)


def run_once(node: Node, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        node.run_argv(timeout=30.0),
        capture_output=True, text=True, timeout=RUN_LIMIT, check=False, env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.mark.parametrize("step", ["partition", "grown-under-it"])
async def test_a_loop_device_left_smaller_by_a_grow_is_adopted_and_resized(node: Node, step: str) -> None:
    """``partition``: the run that grew the partition ends like kill -9 right after it (the hook); the loop
    device stays at the old size, mounted. ``grown-under-it``: the partition table is grown (no crash) while
    the first run's loop device stays mounted at the old size: the start after finds a loop device of the old
    size too."""
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        user_volume_config("data", filesystem="xfs", min_size="64MiB"),
    )
    target = node.target("u-data")
    point = KillPoint(f"target={target} volume=u-data", 0.05)
    killed, output = await anyio.to_thread.run_sync(partial(run_and_kill, node, point, once=False))
    assert killed, output
    (target / "marker").write_text("written before the grow\n")
    offset, old_size = data_partition(node)
    (first,) = loops_over(node, offset)
    assert first.size_limit == old_size

    with node.data_disk.open("r+b") as image:
        image.truncate(GROWN_DATA_DISK)
    if step == "partition":
        crashed = await anyio.to_thread.run_sync(partial(run_once, node, {CRASH_ENV: "partition"}))
        assert crashed.returncode == 137, crashed.stdout + crashed.stderr
    else:
        number = next(p.number for p in read_partition_table(node.data_disk).partitions if p.name == "u-data")
        assert grow_partition_on_disk(str(node.data_disk), number, max_size=0).grew
    _, new_size = data_partition(node)
    assert new_size > old_size
    assert [d.size_limit for d in loops_over(node, offset)] == [old_size]  # left as the cut run had it

    result = await anyio.to_thread.run_sync(run_once, node)
    assert result.returncode == 0, f"the restart did not converge:\n{result.stdout}\n{result.stderr}"
    assert "adopted a loop device left by an earlier run" in result.stdout + result.stderr
    assert node.leftovers() == []  # one loop device and one mount, each let go once at the stop

    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        assert (target / "marker").read_text() == "written before the grow\n"
        mounted = find_mount(target)
        assert mounted is not None
        (device,) = loops_over(node, offset)
        assert (device.size_limit, device.size) == (new_size, new_size)
        assert os.statvfs(target).f_blocks * os.statvfs(target).f_frsize > old_size  # the xfs grew too
