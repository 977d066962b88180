"""A user volume is not made again on another disk while a disk that may hold it has a table that cannot be
used: the new, empty twin would hide the first one and its data (hostile review of issue 15, item 6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from volumed.controllers.block._provisioning import ProvisioningError, provision_partition
from volumed.resources import DiskSpec, ProvisioningConfigSpec
from volumed.storage.gpt import new_table, read_partition_table, write_partition_table

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024
SIZE = 64 * MIB
SECTOR = 512


def _disk(path: Path) -> DiskSpec:
    with path.open("wb") as f:
        f.truncate(SIZE)
    write_partition_table(path, new_table(SIZE))
    return DiskSpec(dev_path=str(path), size=SIZE, image=True)


def _damage_both_headers(path: Path) -> None:
    """Overwrite the 'EFI PART' headers' CRC fields of both copies (LBA 1 and the last LBA) by hand."""
    with path.open("r+b") as f:
        for lba in (1, SIZE // SECTOR - 1):
            f.seek(lba * SECTOR + 16)  # HeaderCRC32
            f.write(b"\xde\xad\xbe\xef")


def test_a_disk_with_an_unreadable_table_stops_provisioning_elsewhere(tmp_path: Path) -> None:
    spec = ProvisioningConfigSpec(disk_selector="true", grow=True)
    first = _disk(tmp_path / "a.img")
    provision_partition("u-data", spec, [first])
    _damage_both_headers(tmp_path / "a.img")
    second = _disk(tmp_path / "b.img")
    before = (tmp_path / "b.img").read_bytes()

    with pytest.raises(ProvisioningError, match=r"disk .*a\.img may hold it") as caught:
        provision_partition("u-data", spec, [first, second])

    assert "repair that table first" in str(caught.value)
    assert (tmp_path / "b.img").read_bytes() == before
    assert read_partition_table(tmp_path / "b.img").partitions == ()


def test_a_disk_with_no_gpt_is_passed_over(tmp_path: Path) -> None:
    blank = tmp_path / "blank.img"
    with blank.open("wb") as f:
        f.truncate(SIZE)
    spec = ProvisioningConfigSpec(disk_selector="true", grow=True)
    second = _disk(tmp_path / "b.img")
    _, number = provision_partition(
        "u-data", spec, [DiskSpec(dev_path=str(blank), size=SIZE, image=True), second]
    )
    assert number == 1
