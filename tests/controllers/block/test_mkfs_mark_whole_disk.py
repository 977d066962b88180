"""The mkfs-pending mark of a whole-disk volume: keyed by the disk's identity (what names the device, not the
slot it is in), kept apart from partition marks, and never counted for another disk."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.controllers.block.test_mkfs_mark import Disk, signature
from volumed.controllers.block._mkfs_mark import (
    MKFS_PENDING_TAG,
    MkfsMark,
    VolumeDisk,
    decode_marks,
    disk_identity,
    encode_marks,
    interrupted_mkfs,
    mark_mkfs,
    read_marks,
    unmark_mkfs,
)
from volumed.resources import DiskSpec
from volumed.storage.probe import SignatureType

if TYPE_CHECKING:
    from pathlib import Path

GIB = 1 << 30


@pytest.fixture
def system(tmp_path: Path) -> Disk:
    return Disk(tmp_path / "system.img")


def test_identity_is_the_device_s_own_name_else_its_place() -> None:
    sdb = DiskSpec(dev_path="/dev/sdb", size=GIB, model="QEMU HARDDISK", serial="S1", wwid="naa.5000c5")
    assert disk_identity(sdb) == "wwid=naa.5000c5,serial=S1,model=QEMU HARDDISK,size=1073741824"
    # the same disk under another node name (plugged elsewhere) keeps its identity
    assert disk_identity(sdb.model_copy(update={"dev_path": "/dev/sdc", "bus_path": "/pci/x"})) == (
        disk_identity(sdb)
    )
    nvme = DiskSpec(dev_path="/dev/nvme0n1", size=GIB, uuid="e0ab-1", model="M")
    assert disk_identity(nvme) == "uuid=e0ab-1,model=M,size=1073741824"
    virtio = DiskSpec(dev_path="/dev/vdb", size=GIB, bus_path="/pci0000:00/0000:00:05.0/virtio2")
    assert disk_identity(virtio) == "bus=/pci0000:00/0000:00:05.0/virtio2,size=1073741824"
    assert disk_identity(DiskSpec(dev_path="/dev/vdb", size=GIB)) == "path=/dev/vdb,size=1073741824"
    image = DiskSpec(dev_path="/img/whole.img", size=GIB, image=True)
    assert disk_identity(image) == "image=/img/whole.img,size=1073741824"
    assert disk_identity(image.model_copy(update={"size": 2 * GIB})) != disk_identity(image)


def test_a_disk_mark_counts_for_that_disk_only(system: Disk) -> None:
    disk = DiskSpec(dev_path="/dev/sdb", size=GIB, serial="A", model="M")
    swapped_in = DiskSpec(dev_path="/dev/sdb", size=GIB, serial="B", model="M")  # another disk, same slot
    volume = VolumeDisk.of("u-whole", disk)
    fs_uuid = str(uuid.uuid4())
    mark = mark_mkfs(system.meta, volume, "xfs", fs_uuid)
    assert mark == MkfsMark("", "u-whole", "xfs", fs_uuid, disk=disk_identity(disk))
    assert read_marks(system.meta) == [mark]
    half_made = signature(SignatureType.XFS, fs_uuid)
    assert interrupted_mkfs(system.meta, volume, half_made)
    assert not interrupted_mkfs(system.meta, VolumeDisk.of("u-whole", swapped_in), half_made)  # a copy
    assert not interrupted_mkfs(system.meta, VolumeDisk.of("u-other", disk), half_made)
    assert not interrupted_mkfs(system.meta, volume, signature(SignatureType.XFS, str(uuid.uuid4())))
    assert not interrupted_mkfs(system.meta, volume, signature(SignatureType.EXT4, fs_uuid))
    # a partition's mark with the disk's identity string as its key is no mark of the disk, nor the reverse
    assert not interrupted_mkfs(system.meta, system.volume("EPHEMERAL", volume_id="u-whole"), half_made)
    unmark_mkfs(system.meta, volume)
    assert read_marks(system.meta) == []
    assert system.meta.get(MKFS_PENDING_TAG) is None


def test_disk_and_partition_marks_live_side_by_side(system: Disk) -> None:
    ephemeral = mark_mkfs(system.meta, system.volume("EPHEMERAL"), "xfs", str(uuid.uuid4()))
    whole = VolumeDisk.of("u-whole", DiskSpec(dev_path="/i/w.img", size=GIB, image=True))
    disk_mark = mark_mkfs(system.meta, whole, "ext4", str(uuid.uuid4()))
    assert sorted(read_marks(system.meta), key=str) == sorted([ephemeral, disk_mark], key=str)
    document = json.loads(system.meta.get(MKFS_PENDING_TAG) or b"")
    # a volumed that reads only "partitions" sees no mark of the disk: it formats no whole disk on it
    assert list(document["partitions"]) == [ephemeral.partition_uuid]
    assert list(document["disks"]) == [disk_mark.disk]
    unmark_mkfs(system.meta, whole)
    assert read_marks(system.meta) == [ephemeral]
    assert "disks" not in json.loads(system.meta.get(MKFS_PENDING_TAG) or b"")


def test_disk_marks_round_trip_and_malformed_ones_are_dropped() -> None:
    marks = [
        MkfsMark("", "u-a", "xfs", str(uuid.uuid4()), disk="serial=A,model=M,size=1"),
        MkfsMark(str(uuid.uuid4()), "u-b", "ext4", str(uuid.uuid4())),
    ]
    assert sorted(decode_marks(encode_marks(marks)), key=str) == sorted(marks, key=str)
    fs = str(uuid.uuid4())
    value = json.dumps(
        {
            "volumed-mkfs-pending": 1,
            "disks": {
                "": {"volume": "u-a", "filesystem": "xfs", "uuid": fs},
                "x": {"volume": "u-a", "filesystem": "xfs", "uuid": "nope"},
                "y": ["u-a"],
            },
        }
    ).encode()
    assert decode_marks(value) == []
