"""An existing volume whose match holds a partition table or an LVM2 physical volume fails once, with why
(review30 F4).

Its status was ready with filesystem ``gpt`` (or ``mbr``, ``lvm2``) and the Mounter retried mount ("unknown
filesystem type 'gpt'") for ever, so ``volumed run --once`` timed out. As for swap (not mountable either), the
volume now fails, is not retried until the config or the disk changes, and nothing is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests._tools import require_tool
from tests.system.lifecycle._node import describe, run_tool, status_of, volume_config
from tests.system.lifecycle.test_existing_volume import (
    add_partition,
    disk_digest,
    existing_volume_config,
    target_of,
)
from volumed.storage.filesystem import find_mount

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

TABLE = "a partition table; select one of its partitions"


async def settled_refusal(node: Node, match: str) -> str:
    """Boot with the existing volume ``x`` selected by ``match``; it fails (settled: not retried) unmounted,
    and the data disk is byte-identical; returns its error."""
    node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"), existing_volume_config("x", match))
    before = disk_digest(node.data_disk)
    async with node.boot(limit=30) as boot:
        status = status_of(boot.snapshot, "e-x")
        assert status.phase.value == "failed", describe(boot.snapshot)
        assert find_mount(target_of(node, "x")) is None
    assert disk_digest(node.data_disk) == before
    return status.error_message


async def test_a_whole_disk_holding_a_gpt_is_refused(node: Node) -> None:
    error = await settled_refusal(node, 'volume.type == "disk" && volume.dev_path.endsWith("data.img")')
    assert error == f"gpt: not mountable ({TABLE})"


async def test_a_partition_holding_an_mbr_is_refused(node: Node) -> None:
    region = add_partition(node, "dos")
    with region.device(read_only=False) as device:
        run_tool(require_tool("sfdisk"), "--quiet", device, input=b"label: dos\n,4MiB\n")
    error = await settled_refusal(node, 'volume.partition_label == "dos"')
    assert error == f"mbr: not mountable ({TABLE})"


async def test_a_partition_holding_an_lvm2_physical_volume_is_refused(node: Node) -> None:
    region = add_partition(node, "pv")
    with region.device(read_only=False) as device:
        run_tool(
            require_tool("pvcreate"), "--yes", "--force", "--config",
            'devices { use_devicesfile = 0 filter = [ "a|.*|" ] } global { use_lvmetad = 0 }', device,
        )  # fmt: skip
    error = await settled_refusal(node, 'volume.partition_label == "pv"')
    assert error == "lvm2: not mountable (an LVM2 physical volume; volumed does not activate LVM)"
