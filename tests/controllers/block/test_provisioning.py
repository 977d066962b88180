"""Provisioning of user-volume partitions: selector, sizes, and idempotence after an interrupted attempt."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from volumed.controllers.block._provisioning import ProvisioningError, provision_partition
from volumed.resources import DiskSpec, ProvisioningConfigSpec
from volumed.storage import disklayout
from volumed.storage.gpt import new_table, read_partition_table, write_partition_table

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
    assert (number, region.size) == (1, 16 * MIB)  # without grow: minSize
    # an attempt that stopped after making the partition (crash, or discovery not yet rescanned) is resumed
    assert provision_partition("u-data", spec, found) == (region, number)
    assert len(read_partition_table(found[1].dev_path).partitions) == 1


def test_grow_takes_the_free_space(tmp_path: Path) -> None:
    found = disks(tmp_path)
    region, _ = provision_partition(
        "u-big", ProvisioningConfigSpec(disk_selector="!system_disk", grow=True), found
    )
    assert 120 * MIB <= region.size < 128 * MIB
    assert region.size % MIB == 0


def test_no_room_is_a_clear_error(tmp_path: Path) -> None:
    found = disks(tmp_path)
    spec = ProvisioningConfigSpec(disk_selector="!system_disk", min_size=1024 * MIB)
    with pytest.raises(
        ProvisioningError, match=r"cannot provision volume u-x: .*data.img: \d+ bytes free, 1073741824"
    ):
        provision_partition("u-x", spec, found)
    with pytest.raises(ProvisioningError, match="no disk matches the selector"):
        provision_partition("u-x", ProvisioningConfigSpec(disk_selector="disk.size > 10u * GiB"), found)
