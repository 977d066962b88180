"""Provisioning of partitions as Talos does it: selector, sizes, blank disks, idempotence after an interrupted
attempt."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from volumed.controllers.block._provisioning import ProvisioningError, provision_partition
from volumed.resources import DiskSpec, ProvisioningConfigSpec
from volumed.storage import disklayout
from volumed.storage.gpt import NoPartitionTableError, new_table, read_partition_table, write_partition_table

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024


def disks(tmp_path: Path) -> list[DiskSpec]:
    system = tmp_path / "system.img"
    disklayout.create_disk_image(system, 256 * MIB, state_size=64 * MIB)
    data = tmp_path / "data.img"
    with data.open("wb") as f:
        f.truncate(128 * MIB)
    write_partition_table(data, new_table(128 * MIB))
    return [
        DiskSpec(dev_path=str(system), size=256 * MIB, image=True),
        DiskSpec(dev_path=str(data), size=128 * MIB, image=True),
    ]


def test_selector_picks_the_data_disk_and_a_retry_reuses_the_partition(tmp_path: Path) -> None:
    found = disks(tmp_path)
    spec = ProvisioningConfigSpec(disk_selector="!system_disk", min_size=16 * MIB, max_size=32 * MIB)
    region, number = provision_partition("u-data", spec, found)
    assert region.path == found[1].dev_path
    assert (number, region.size) == (1, 32 * MIB)  # maxSize, grow or not (Talos' CreatePartition)
    # an attempt that stopped after making the partition (crash, or discovery not yet rescanned) is resumed
    assert provision_partition("u-data", spec, found) == (region, number)
    assert len(read_partition_table(found[1].dev_path).partitions) == 1


@pytest.mark.parametrize("grow", [True, False])
def test_no_max_size_takes_all_the_free_space(tmp_path: Path, grow: bool) -> None:
    found = disks(tmp_path)
    spec = ProvisioningConfigSpec(disk_selector="!system_disk", min_size=16 * MIB, grow=grow)
    region, _ = provision_partition("u-big", spec, found)
    # a 128 MiB disk: 1 MiB lead-in, the last MiB holds the backup GPT (aligned down)
    assert (region.offset, region.size) == (MIB, 126 * MIB)


def test_relative_max_size_is_a_share_of_the_free_space(tmp_path: Path) -> None:
    found = disks(tmp_path)
    spec = ProvisioningConfigSpec(disk_selector="!system_disk", relative_max_size=50)
    region, _ = provision_partition("u-half", spec, found)
    assert region.size == 63 * MIB  # 50% of the 126 MiB allocatable (Talos' ResolveMaxSize)


def test_system_disk_is_the_disk_with_meta(tmp_path: Path) -> None:
    """A disk with STATE or EPHEMERAL but no META is not the system disk (Talos' SystemDisk controller)."""
    found = disks(tmp_path)
    other = tmp_path / "other.img"
    other.write_bytes(b"")
    os.truncate(other, 256 * MIB)
    table, _ = new_table(256 * MIB).add_partition(size=8 * MIB, name="EPHEMERAL")
    write_partition_table(other, table)
    found = [found[0], DiskSpec(dev_path=str(other), size=256 * MIB, image=True)]
    system = found[0].dev_path  # the disk holding META (`system_disk_of`)
    spec = ProvisioningConfigSpec(disk_selector="!system_disk")
    region, _ = provision_partition("u-x", spec, found, system_disk=system)
    assert region.path == str(other)
    with pytest.raises(ProvisioningError, match=r"u-y: [^;]*system\.img: 0 bytes free, 1 needed$"):
        provision_partition(
            "u-y", ProvisioningConfigSpec(disk_selector="system_disk"), found, system_disk=system
        )


def test_no_room_is_a_clear_error(tmp_path: Path) -> None:
    found = disks(tmp_path)
    spec = ProvisioningConfigSpec(disk_selector="!system_disk", min_size=1024 * MIB)
    with pytest.raises(
        ProvisioningError, match=r"cannot provision volume u-x: .*data.img: \d+ bytes free, 1073741824"
    ):
        provision_partition("u-x", spec, found)
    with pytest.raises(ProvisioningError, match="no disk matches the selector"):
        provision_partition("u-x", ProvisioningConfigSpec(disk_selector="disk.size > 10u * GiB"), found)


def blank_disk(tmp_path: Path, name: str, size: int) -> DiskSpec:
    path = tmp_path / name
    path.write_bytes(b"")
    os.truncate(path, size)
    return DiskSpec(dev_path=str(path), size=size, image=True)


def test_a_blank_disk_gets_a_gpt_and_a_partition_of_max_size(tmp_path: Path) -> None:
    disk = blank_disk(tmp_path, "blank.img", 128 * MIB)
    spec = ProvisioningConfigSpec(min_size=8 * MIB, max_size=32 * MIB)
    region, number = provision_partition("u-data", spec, [disk])
    table = read_partition_table(disk.dev_path)
    assert (number, region.offset, region.size) == (1, MIB, 32 * MIB)
    assert [(p.name, p.size(512)) for p in table.partitions] == [("u-data", 32 * MIB)]
    assert table.disk_size == 128 * MIB
    assert not table.damage


def test_a_gpt_whose_protective_mbr_was_never_written_is_found_again(tmp_path: Path) -> None:
    """The MBR goes last (write_new_disk_table): a power cut before it leaves the partition to be found."""
    disk = blank_disk(tmp_path, "blank.img", 64 * MIB)
    spec = ProvisioningConfigSpec(min_size=8 * MIB)
    made = provision_partition("u-data", spec, [disk])
    with open(disk.dev_path, "r+b") as image:
        image.write(bytes(512))  # as if the power went before the protective MBR
    assert provision_partition("u-data", spec, [disk]) == made
    assert len(read_partition_table(disk.dev_path).partitions) == 1


def test_a_disk_with_data_and_no_gpt_is_never_given_one(tmp_path: Path) -> None:
    """Not blank: unknown data at a sample point (64 MiB in) is enough; nothing is written."""
    disk = blank_disk(tmp_path, "data.img", 128 * MIB)
    with open(disk.dev_path, "r+b") as image:
        image.seek(64 * MIB)
        image.write(b"precious")
    before = (tmp_path / "data.img").read_bytes()
    with pytest.raises(ProvisioningError, match=r"data\.img: no GPT and not blank \(holds unknown data"):
        provision_partition("u-data", ProvisioningConfigSpec(min_size=8 * MIB), [disk])
    assert (tmp_path / "data.img").read_bytes() == before


def test_too_little_free_space_names_the_disk_and_both_sizes(tmp_path: Path) -> None:
    disk = blank_disk(tmp_path, "small.img", 16 * MIB)
    with pytest.raises(ProvisioningError, match=r"small\.img: 14680064 bytes free, 33554432 needed"):
        provision_partition("u-data", ProvisioningConfigSpec(min_size=32 * MIB), [disk])
    with pytest.raises(NoPartitionTableError):
        read_partition_table(disk.dev_path)  # nothing written
