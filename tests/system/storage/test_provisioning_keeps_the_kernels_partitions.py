"""Provisioning on a loop device (``losetup -P``) whose kernel partitions differ from its GPT (review31).

F1: a mounted partition whose GPT entry was shrunk (the kernel keeps its old size: the re-read was refused)
was shrunk in the kernel by the next table write (BLKPG resize works on a partition in use) and the new
partition placed in its bytes was wiped through its own node: the mounted ext4 gave EIO.
F5: an attempt killed after the table was written, before the wipe, left the new partition unwiped: the
retry took it as made and an old tenant's ext4 was mounted as the new volume.
F2: a stale kernel partition at the new number (gone from the GPT, open by a reader) made the first
attempt fail after the write; the retry saw the number in the kernel and never corrected it.

This host's kernel has no partition-table parsers: the tests add the kernel's partitions with BLKPG.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

import volumed.storage.gpt._io as gpt_io
from tests._tools import require_tool
from tests.system.storage.test_partition_grow_on_loop_devices import _add_partition, _partitioned_loop
from volumed.controllers.block._provisioning import ProvisioningError, _kernel_clash, provision_partition
from volumed.resources import DiskSpec, ProvisioningConfigSpec
from volumed.storage.blockdev import BlockDeviceError, Region
from volumed.storage.disklayout import wipe_system_partitions
from volumed.storage.gpt import (
    disk_holders,
    grow_partition_on_disk,
    partition_node,
    read_partition_table,
    tell_kernel,
    write_partition_table,
)
from volumed.storage.probe import ContentKind, examine_region

MIB = 1024 * 1024
OLD = b"\xa5" * MIB  # somebody's bytes


def _kernel(dev: str) -> dict[int, tuple[int, int]]:
    name = Path(dev).name
    found = {}
    for entry in Path(f"/sys/block/{name}").glob(f"{name}p*"):
        number = int((entry / "partition").read_text())
        found[number] = (int((entry / "start").read_text()) * 512, int((entry / "size").read_text()) * 512)
    return found


def _image(tmp_path: Path, script: str) -> Path:
    image = tmp_path / "disk.img"
    with image.open("wb") as f:
        f.truncate(64 * MIB)
    subprocess.run([require_tool("sfdisk"), "-q", str(image)], input=script, text=True, check=True)
    return image


def _spec(size: int) -> ProvisioningConfigSpec:
    return ProvisioningConfigSpec(disk_selector="true", min_size=size, max_size=size)


def _shrink_gpt_entry(dev: str, number: int, size: int) -> None:
    """The GPT entry made smaller while the kernel keeps the partition (sgdisk -d/-n on a mounted one)."""
    table = read_partition_table(dev)
    part = table.partition(number)
    smaller = replace(part, last_lba=part.first_lba + size // table.sector_size - 1)
    rest = tuple(smaller if p.number == number else p for p in table.partitions)
    write_partition_table(dev, replace(table, partitions=rest), reread=False)


def _read(image: Path, offset: int, size: int) -> bytes:
    with image.open("rb") as f:
        f.seek(offset)
        return f.read(size)


def test_a_partition_in_use_the_gpt_made_smaller_is_neither_shrunk_nor_wiped(tmp_path: Path) -> None:
    """F1: the new partition would lie in bytes the kernel's (mounted) partition 1 still covers: refused
    before anything is written; the kernel keeps partition 1 whole and its bytes stay."""
    image = _image(tmp_path, "label: gpt\nstart=2048, size=65536, name=archive\n")
    with image.open("r+b") as f:
        f.seek(12 * MIB)
        f.write(OLD)  # the mounted filesystem's data, past the GPT entry's new end
    with _partitioned_loop(image) as dev:
        _add_partition(dev, 1, MIB, 32 * MIB)
        _shrink_gpt_entry(dev, 1, 8 * MIB)
        held = os.open(f"{dev}p1", os.O_RDONLY | os.O_EXCL)  # mounted
        try:
            before = read_partition_table(dev)
            with pytest.raises(ProvisioningError, match="partition 1") as refused:
                provision_partition("u-data", _spec(16 * MIB), [DiskSpec(dev_path=dev, size=64 * MIB)])
            assert "the kernel" in str(refused.value)
            assert _kernel(dev) == {1: (MIB, 32 * MIB)}
            assert read_partition_table(dev) == before
        finally:
            os.close(held)
    assert _read(image, 12 * MIB, MIB) == OLD


def test_a_partition_in_use_removed_from_the_gpt_is_not_taken_for_the_new_one(tmp_path: Path) -> None:
    """F1b: the GPT entry of partition 2 (open by a reader, e.g. a VM) was removed: the new partition would
    get its number and start. Refused before anything is written; its bytes stay, and no GPT entry is
    written for discovery to label the kernel's partition 2 with."""
    image = _image(tmp_path, "label: gpt\nstart=2048, size=32768, name=archive\nstart=34816, size=32768\n")
    with image.open("r+b") as f:
        f.seek(17 * MIB)
        f.write(OLD)  # partition 2's data
    with _partitioned_loop(image) as dev:
        _add_partition(dev, 1, MIB, 16 * MIB)
        _add_partition(dev, 2, 17 * MIB, 16 * MIB)
        table = read_partition_table(dev)
        write_partition_table(dev, table.remove_partition(2), reread=False)  # sfdisk --delete, EBUSY
        held = os.open(f"{dev}p1", os.O_RDONLY | os.O_EXCL)
        reader = os.open(f"{dev}p2", os.O_RDONLY)
        try:
            with pytest.raises(ProvisioningError, match="overlap partition 2 as the kernel has it"):
                provision_partition("u-data", _spec(16 * MIB), [DiskSpec(dev_path=dev, size=64 * MIB)])
            assert _kernel(dev) == {1: (MIB, 16 * MIB), 2: (17 * MIB, 16 * MIB)}
            assert read_partition_table(dev).find("u-data") is None
        finally:
            os.close(reader)
            os.close(held)
    assert _read(image, 17 * MIB, MIB) == OLD


def test_telling_the_kernel_never_shrinks_a_partition_in_use(tmp_path: Path) -> None:
    """F1: BLKPG resize shrinks a mounted partition; tell_kernel refuses, naming it, and leaves it whole."""
    image = _image(tmp_path, "label: gpt\nstart=2048, size=65536, name=archive\n")
    with _partitioned_loop(image) as dev:
        _add_partition(dev, 1, MIB, 32 * MIB)
        _shrink_gpt_entry(dev, 1, 8 * MIB)
        held = os.open(f"{dev}p1", os.O_RDONLY | os.O_EXCL)
        try:
            with pytest.raises(BlockDeviceError, match="partition 1 of"):
                tell_kernel(dev, read_partition_table(dev))
            assert _kernel(dev) == {1: (MIB, 32 * MIB)}
        finally:
            os.close(held)


def test_a_partition_open_by_a_reader_is_not_shrunk_either(tmp_path: Path) -> None:
    """F1: a partition open without O_EXCL (a VM's disk, a backup reading it) is in use too."""
    image = _image(tmp_path, "label: gpt\nstart=2048, size=65536, name=archive\n")
    with _partitioned_loop(image) as dev:
        _add_partition(dev, 1, MIB, 32 * MIB)
        _shrink_gpt_entry(dev, 1, 8 * MIB)
        reader = os.open(f"{dev}p1", os.O_RDONLY)
        try:
            with pytest.raises(BlockDeviceError, match="partition 1 of"):
                tell_kernel(dev, read_partition_table(dev))
            assert _kernel(dev) == {1: (MIB, 32 * MIB)}
        finally:
            os.close(reader)


def test_a_grow_never_shrinks_the_kernels_partition_in_use(tmp_path: Path) -> None:
    """F1 in grow: the GPT entry grown to less than the kernel's partition in use would shrink it."""
    image = _image(tmp_path, "label: gpt\nstart=2048, size=65536, name=archive\n")
    with _partitioned_loop(image) as dev:
        _add_partition(dev, 1, MIB, 32 * MIB)
        _shrink_gpt_entry(dev, 1, 8 * MIB)
        held = os.open(f"{dev}p1", os.O_RDONLY | os.O_EXCL)
        try:
            with pytest.raises(BlockDeviceError, match="partition 1 of"):
                grow_partition_on_disk(dev, 1, max_size=16 * MIB)
            assert _kernel(dev) == {1: (MIB, 32 * MIB)}
            assert read_partition_table(dev).partition(1).size(512) == 8 * MIB  # nothing written
        finally:
            os.close(held)


def test_a_partition_node_is_given_only_for_the_region_asked(tmp_path: Path) -> None:
    """F7: the kernel's partition 1 is 32 MiB, the region 8 MiB: its node is not that region's."""
    image = _image(tmp_path, "label: gpt\nstart=2048, size=65536, name=archive\n")
    with _partitioned_loop(image) as dev:
        _add_partition(dev, 1, MIB, 32 * MIB)
        assert partition_node(dev, 1, MIB, 8 * MIB) is None
        assert partition_node(dev, 1, 2 * MIB, 32 * MIB) is None
        assert partition_node(dev, 1, MIB, 32 * MIB) == f"{dev}p1"


class _Killed(BaseException):
    """kill -9 at a fault point: nothing after it runs."""


def _ext4_at(image: Path, offset: int, size: int) -> None:
    """An old tenant's ext4 where the new partition goes."""
    old = image.parent / "old.img"
    with old.open("wb") as f:
        f.truncate(size)
    subprocess.run([require_tool("mkfs.ext4"), "-q", "-F", str(old)], check=True)
    with image.open("r+b") as f, old.open("rb") as src:
        f.seek(offset)
        f.write(src.read())
    old.unlink()


def test_an_attempt_killed_after_the_table_write_leaves_the_new_partition_wiped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F5: killed after the table was written (before the kernel was told and, before, the wipe): the
    retry hands out the partition, and no old filesystem is found on it."""
    image = _image(tmp_path, "label: gpt\nstart=2048, size=32768, name=archive\n")
    _ext4_at(image, 17 * MIB, 8 * MIB)
    disk = DiskSpec(dev_path="", size=64 * MIB)
    with _partitioned_loop(image) as dev:
        disk = disk.model_copy(update={"dev_path": dev})
        _add_partition(dev, 1, MIB, 16 * MIB)
        held = os.open(f"{dev}p1", os.O_RDONLY | os.O_EXCL)
        try:

            def killed(*_: object) -> None:
                raise _Killed

            with monkeypatch.context() as patch:
                patch.setattr(gpt_io, "tell_kernel", killed)
                with pytest.raises(_Killed):
                    provision_partition("u-data", _spec(8 * MIB), [disk])
            region, number = provision_partition("u-data", _spec(8 * MIB), [disk])
            assert (region.offset, region.size, number) == (17 * MIB, 8 * MIB, 2)
            assert _kernel(dev)[2] == (17 * MIB, 8 * MIB)
            assert examine_region(Region.whole(f"{dev}p2")).kind is ContentKind.BLANK
        finally:
            os.close(held)


def test_a_stale_kernel_partition_at_the_new_number_is_corrected_at_the_retry(tmp_path: Path) -> None:
    """F2: the kernel's partition 2 (gone from the GPT, elsewhere) is open by a reader: the first attempt
    fails after its write; once the reader is gone the retry tells the kernel, and the partition is wiped."""
    image = _image(tmp_path, "label: gpt\nstart=2048, size=32768, name=archive\n")
    with image.open("r+b") as f:
        f.seek(17 * MIB)
        f.write(OLD)
        f.seek(40 * MIB)
        f.write(OLD)
    disk = DiskSpec(dev_path="", size=64 * MIB)
    with _partitioned_loop(image) as dev:
        disk = disk.model_copy(update={"dev_path": dev})
        _add_partition(dev, 1, MIB, 16 * MIB)
        _add_partition(dev, 2, 40 * MIB, 8 * MIB)
        held = os.open(f"{dev}p1", os.O_RDONLY | os.O_EXCL)
        try:
            reader = os.open(f"{dev}p2", os.O_RDONLY)
            try:
                with pytest.raises(BlockDeviceError, match="partition 2 of"):
                    provision_partition("u-data", _spec(8 * MIB), [disk])
            finally:
                os.close(reader)
            region, number = provision_partition("u-data", _spec(8 * MIB), [disk])
            assert (region.offset, region.size, number) == (17 * MIB, 8 * MIB, 2)
            assert _kernel(dev) == {1: (MIB, 16 * MIB), 2: (17 * MIB, 8 * MIB)}
        finally:
            os.close(held)
    assert _read(image, 17 * MIB, MIB) == bytes(MIB)
    assert _read(image, 40 * MIB, MIB) == OLD  # the stale partition's bytes were never the new one's


def test_wiping_a_partition_by_label_never_goes_through_a_larger_kernel_partition(tmp_path: Path) -> None:
    """F7 in `volumed wipe`: the kernel's partition 1 still covers the next GPT partition's bytes (its
    entry was made smaller and another written after it): wiping STATE through that node zeroed u-data's."""
    image = _image(
        tmp_path, "label: gpt\nstart=2048, size=16384, name=STATE\nstart=18432, size=16384, name=u-data\n"
    )
    with image.open("r+b") as f:
        f.seek(16 * MIB)
        f.write(OLD)  # u-data's last MiB
    with _partitioned_loop(image) as dev:
        _add_partition(dev, 1, MIB, 16 * MIB)
        wiped = wipe_system_partitions(dev, ["STATE"])
        assert [w.label for w in wiped] == ["STATE"]
    assert _read(image, 16 * MIB, MIB) == OLD
    assert _read(image, 8 * MIB, MIB) == bytes(MIB)  # STATE's last MiB


def test_a_mapping_over_the_disk_itself_is_found(tmp_path: Path) -> None:
    """A device-mapper table over the disk itself (not a partition) may hold bytes the GPT and the kernel's
    partitions show free, and the disk's node is opened without O_EXCL while a partition is in use: such a
    disk gets no new partition. (This host has no device-mapper: its sysfs entry is made under a tmp root.)"""
    image = _image(tmp_path, "label: gpt\nstart=2048, size=32768, name=archive\n")
    with _partitioned_loop(image) as dev:
        rdev = os.stat(dev).st_rdev
        holders = tmp_path / "sys" / "dev" / "block" / f"{os.major(rdev)}:{os.minor(rdev)}" / "holders"
        holders.mkdir(parents=True)
        assert disk_holders(dev, sysfs=str(tmp_path / "sys")) == []
        (holders / "dm-3").touch()
        (holders / "md0").touch()
        assert disk_holders(dev, sysfs=str(tmp_path / "sys")) == ["dm-3", "md0"]
        assert disk_holders(dev) == []  # the real sysfs: nothing holds the loop device
    assert disk_holders(str(image)) == []
    region = Region("/dev/vdb", 17 * MIB, 8 * MIB)
    assert "held by dm-3" in _kernel_clash(region, {}, ["dm-3"])
    assert _kernel_clash(region, {1: (MIB, 16 * MIB)}, []) == ""
