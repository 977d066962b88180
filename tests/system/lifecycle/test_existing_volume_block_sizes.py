"""ExistingVolumeConfig selectors on Talos' superblock fields (issue 17): ``volume.filesystem_block_size``,
``volume.block_size`` and ``volume.probed_size`` pick the partition whose filesystem has them, not another
ext4 beside it. They used to be refused by name (volumed did not probe them).

Two ext4 partitions on the data disk, the first in discovery order made with 1 KiB blocks and a filesystem
smaller than its partition, the second with 4 KiB blocks over all of it; the expected sizes are dumpe2fs'.
"""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING

from tests._tools import require_tool
from tests.system.lifecycle._node import describe, phases, status_of, volume_config
from tests.system.lifecycle.test_existing_volume import add_partition, existing_volume_config

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node, Region


def make_ext4(region: Region, label: str, block: int, fs_size: str | None = None) -> tuple[int, int]:
    """mkfs.ext4 on the partition (``fs_size``: less than all of it); its (block size, size in bytes) as
    dumpe2fs reads them."""
    with region.device(read_only=False) as device:
        size = [fs_size] if fs_size else []
        subprocess.run(
            [require_tool("mkfs.ext4"), "-q", "-F", "-L", label, "-b", str(block), device, *size],
            check=True,
            capture_output=True,
        )
        dump = subprocess.run(
            [require_tool("dumpe2fs"), "-h", device], check=True, capture_output=True, text=True
        ).stdout
    block = re.search(r"^Block size:\s+(\d+)", dump, re.MULTILINE)
    count = re.search(r"^Block count:\s+(\d+)", dump, re.MULTILINE)
    assert block is not None, dump
    assert count is not None, dump
    return int(block.group(1)), int(block.group(1)) * int(count.group(1))


async def test_selectors_on_superblock_sizes_pick_the_right_partition(node: Node) -> None:
    small = add_partition(node, "small")
    big = add_partition(node, "big")
    small_block, small_size = make_ext4(small, "same", 1024, "20M")
    big_block, big_size = make_ext4(big, "same", 4096)
    assert (small_block, big_block) == (1024, 4096)
    assert small_size == 20 << 20 < small.size
    assert big_size == big.size
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        existing_volume_config(
            "fourk", 'volume.label == "same" && volume.filesystem_block_size == 4096u', read_only=True
        ),
        existing_volume_config(
            "shrunk",
            f'volume.label == "same" && volume.probed_size == {small_size}u'
            " && volume.probed_size < volume.size && volume.block_size == 1024u",
            read_only=True,
        ),
    )
    async with node.boot() as boot:
        snapshot = boot.snapshot
        assert phases(snapshot) == {
            "STATE": "ready",
            "EPHEMERAL": "ready",
            "e-fourk": "ready",
            "e-shrunk": "ready",
        }, describe(snapshot)
        fourk, shrunk = status_of(snapshot, "e-fourk"), status_of(snapshot, "e-shrunk")
        assert (fourk.location, fourk.offset) == (str(big.path), big.offset)
        assert (shrunk.location, shrunk.offset) == (str(small.path), small.offset)
        assert "e-fourk" in snapshot.mounted
        assert "e-shrunk" in snapshot.mounted
