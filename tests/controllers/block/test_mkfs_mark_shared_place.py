"""Two volumes whose mkfs marks have the same place (review31 F6): two disks with the same identity (same
serial, model and size: cloned or badly made USB disks), or two volumes over one partition UUID (a cloned
table). One volume's mark never removes another's: B's mark replaced A's, so A's cut mkfs was forgotten and
its half-made filesystem ('Structure needs cleaning') was never made again."""

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


def test_two_disks_of_one_identity_keep_each_volumes_mark(system: Disk) -> None:
    sdb = DiskSpec(dev_path="/dev/sdb", size=GIB, serial="0123456789", model="USB DISK")
    sdc = sdb.model_copy(update={"dev_path": "/dev/sdc"})
    a, b = VolumeDisk.of("u-a", sdb), VolumeDisk.of("u-b", sdc)
    assert a.place() == b.place()
    a_uuid, b_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    a_mark = mark_mkfs(system.meta, a, "xfs", a_uuid)  # A's mkfs is cut here
    b_mark = mark_mkfs(system.meta, b, "xfs", b_uuid)  # B's starts
    assert sorted(read_marks(system.meta), key=str) == sorted([a_mark, b_mark], key=str)
    assert interrupted_mkfs(system.meta, a, signature(SignatureType.XFS, a_uuid))
    assert not interrupted_mkfs(system.meta, a, signature(SignatureType.XFS, b_uuid))  # B's, not A's
    unmark_mkfs(system.meta, b)  # B's mkfs ends: A's mark stays
    assert read_marks(system.meta) == [a_mark]
    assert interrupted_mkfs(system.meta, a, signature(SignatureType.XFS, a_uuid))
    # a volume's new mark still replaces its own older one, at the shared place or elsewhere
    again = mark_mkfs(system.meta, a, "ext4", str(uuid.uuid4()))
    assert read_marks(system.meta) == [again]
    unmark_mkfs(system.meta, a)
    assert system.meta.get(MKFS_PENDING_TAG) is None


def test_two_volumes_over_one_partition_uuid_keep_each_volumes_mark(system: Disk) -> None:
    first = mark_mkfs(system.meta, system.volume("EPHEMERAL", volume_id="u-a"), "xfs", str(uuid.uuid4()))
    second = mark_mkfs(system.meta, system.volume("EPHEMERAL", volume_id="u-b"), "ext4", str(uuid.uuid4()))
    assert sorted(read_marks(system.meta), key=str) == sorted([first, second], key=str)
    unmark_mkfs(system.meta, system.volume("EPHEMERAL", volume_id="u-a"))
    assert read_marks(system.meta) == [second]


def test_one_mark_per_place_keeps_the_older_format() -> None:
    """A place with one mark is written as before (an object), so an older volumed reads it; a shared place is
    a list, which an older volumed drops (it then formats nothing on it: the safe side)."""
    single = MkfsMark("", "u-a", "xfs", str(uuid.uuid4()), disk="serial=S,model=M,size=1")
    shared = MkfsMark("", "u-b", "xfs", str(uuid.uuid4()), disk="serial=S,model=M,size=1")
    document = json.loads(encode_marks([single]))
    assert document["disks"] == {
        single.disk: {"volume": "u-a", "filesystem": "xfs", "uuid": single.filesystem_uuid}
    }
    document = json.loads(encode_marks([shared, single]))
    assert [body["volume"] for body in document["disks"][single.disk]] == ["u-a", "u-b"]
    assert sorted(decode_marks(encode_marks([single, shared])), key=str) == sorted([single, shared], key=str)
