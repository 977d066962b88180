"""write_partition_table on a block device one of whose partitions is in use: the kernel is told of the new
partition (BLKPG), where a re-read of the whole table (BLKRRPART) answers EBUSY.

In the kernel tier (tests/kernel/test_volume_types_dm.py) a swap volume provisioned on a data disk whose
existing volume was mounted stayed "waiting for the kernel to show partition 3 of /dev/vdb" for ever: the
write raised EBUSY after the table was on disk, and the kernel never learnt of the partition.

This host's kernel has no partition-table parsers, so the test adds the kernel's first partition itself
with BLKPG_ADD_PARTITION on a loop device attached with partition support (``losetup -P``).
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from tests._tools import require_tool
from tests.system.storage.test_partition_grow_on_loop_devices import _add_partition, _partitioned_loop
from volumed.controllers.block._provisioning import provision_partition
from volumed.resources import DiskSpec, ProvisioningConfigSpec
from volumed.storage.blockdev import BlockDeviceError
from volumed.storage.gpt import read_partition_table, write_partition_table

MIB = 1024 * 1024


def _kernel_partition(dev: str, number: int) -> tuple[int, int] | None:
    entry = Path(f"/sys/block/{Path(dev).name}/{Path(dev).name}p{number}")
    if not entry.exists():
        return None
    return int((entry / "start").read_text()) * 512, int((entry / "size").read_text()) * 512


def _image(tmp_path: Path) -> Path:
    image = tmp_path / "disk.img"
    with image.open("wb") as f:
        f.truncate(64 * MIB)
    script = "label: gpt\nstart=2048, size=32768, name=archive\n"
    subprocess.run([require_tool("sfdisk"), "-q", str(image)], input=script, text=True, check=True)
    return image


def test_a_partition_added_next_to_one_in_use_is_shown_by_the_kernel(tmp_path: Path) -> None:
    with _partitioned_loop(_image(tmp_path)) as dev:
        _add_partition(dev, 1, MIB, 16 * MIB)
        held = os.open(f"{dev}p1", os.O_RDONLY | os.O_EXCL)  # mounted, in the kernel tier
        try:
            table, added = read_partition_table(dev).add_partition(size=8 * MIB, name="s-swap")
            write_partition_table(dev, table)
            assert _kernel_partition(dev, added.number) == (added.offset(512), 8 * MIB)
            assert _kernel_partition(dev, 1) == (MIB, 16 * MIB)
            assert read_partition_table(dev).find("s-swap") is not None
        finally:
            os.close(held)


def test_a_partition_in_use_is_not_removed_from_the_kernel(tmp_path: Path) -> None:
    with _partitioned_loop(_image(tmp_path)) as dev:
        _add_partition(dev, 1, MIB, 16 * MIB)
        held = os.open(f"{dev}p1", os.O_RDONLY | os.O_EXCL)
        try:
            emptied = read_partition_table(dev).remove_partition(1)
            with pytest.raises(BlockDeviceError, match="cannot remove partition 1 of") as refused:
                write_partition_table(dev, emptied)
            assert refused.value.errno == errno.EBUSY
            assert _kernel_partition(dev, 1) == (MIB, 16 * MIB)
        finally:
            os.close(held)


def test_provisioning_next_to_a_partition_in_use_wipes_the_new_one(tmp_path: Path) -> None:
    """The new partition is wiped (before its table is written, through the disk's node without O_EXCL,
    which is refused with EBUSY while another partition is in use: that failed the volume, kernel tier)."""
    image = _image(tmp_path)
    with image.open("r+b") as f:  # somebody's old bytes where the new partition goes (after the first)
        f.seek(17 * MIB)
        f.write(b"\xa5" * MIB)
    with _partitioned_loop(image) as dev:
        _add_partition(dev, 1, MIB, 16 * MIB)
        held = os.open(f"{dev}p1", os.O_RDONLY | os.O_EXCL)
        try:
            disk = DiskSpec(dev_path=dev, size=64 * MIB)
            spec = ProvisioningConfigSpec(disk_selector="true", min_size=8 * MIB, max_size=8 * MIB)
            region, number = provision_partition("s-swap", spec, [disk])
            assert (region.path, region.offset, region.size, number) == (dev, 17 * MIB, 8 * MIB, 2)
            assert _kernel_partition(dev, 2) == (17 * MIB, 8 * MIB)
        finally:
            os.close(held)
    with image.open("rb") as f:
        f.seek(17 * MIB)
        assert f.read(MIB) == bytes(MIB)  # wiped


def test_a_partition_an_interrupted_attempt_wrote_is_told_to_the_kernel_at_the_retry(tmp_path: Path) -> None:
    """An attempt killed after the table was written, before the kernel was told: the retry finds the
    partition in the GPT (made by that attempt) and tells the kernel, which the volume waits for."""
    with _partitioned_loop(_image(tmp_path)) as dev:
        _add_partition(dev, 1, MIB, 16 * MIB)
        held = os.open(f"{dev}p1", os.O_RDONLY | os.O_EXCL)
        try:
            table, _ = read_partition_table(dev).add_partition(size=8 * MIB, name="s-swap")
            write_partition_table(dev, table, reread=False)  # the attempt was cut here
            assert _kernel_partition(dev, 2) is None
            disk = DiskSpec(dev_path=dev, size=64 * MIB)
            spec = ProvisioningConfigSpec(disk_selector="true", min_size=8 * MIB, max_size=8 * MIB)
            _, number = provision_partition("s-swap", spec, [disk])
            assert number == 2
            assert _kernel_partition(dev, 2) == (17 * MIB, 8 * MIB)
        finally:
            os.close(held)
