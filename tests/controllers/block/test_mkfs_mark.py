"""The mkfs-pending mark of unencrypted volumes in META: written and removed durably, keyed by the partition's
GPT UUID and the filesystem UUID given to mkfs; foreign, bad or other volumes' marks never count."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests._tools import require_tool
from volumed.controllers.block._mkfs_mark import (
    MKFS_PENDING_TAG,
    ForeignValueError,
    MkfsMark,
    MkfsMarkError,
    VolumePartition,
    decode_marks,
    encode_marks,
    interrupted_mkfs,
    mark_mkfs,
    read_marks,
    unmark_mkfs,
)
from volumed.storage import disklayout
from volumed.storage.filesystem import UnsupportedFilesystemError, make_filesystem
from volumed.storage.gpt import read_partition_table
from volumed.storage.meta import ADV_SIZE, MetaPartition, MetaState
from volumed.storage.probe import Signature, SignatureType, probe_path

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

MIB = 1024 * 1024


class Disk:
    """A Talos-layout disk image: its META, and its partitions as the formatter sees them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.table = disklayout.create_disk_image(path, 256 * MIB, state_size=64 * MIB)
        meta = self.table.find("META")
        assert meta is not None
        self.meta = MetaPartition(path, offset=meta.offset(self.table.sector_size))

    def volume(self, label: str, *, volume_id: str | None = None) -> VolumePartition:
        partition = self.table.find(label)
        assert partition is not None
        ss = self.table.sector_size
        return VolumePartition(
            volume_id=volume_id or label,
            label=label,
            path=str(self.path),
            offset=partition.offset(ss),
            size=partition.size(ss),
            disk=str(self.path),
            number=partition.number,
        )

    def partition_uuid(self, label: str) -> str:
        partition = read_partition_table(self.path).find(label)
        assert partition is not None
        return str(partition.unique_guid)

    def meta_digest(self) -> str:
        with self.path.open("rb") as image:
            image.seek(self.meta.offset)
            return hashlib.sha256(image.read(ADV_SIZE)).hexdigest()


@pytest.fixture
def disk(tmp_path: Path) -> Disk:
    return Disk(tmp_path / "system.img")


def signature(fstype: SignatureType, fs_uuid: str | None) -> Signature:
    return Signature(fstype, ((0, 4),), uuid=fs_uuid)


def test_mark_is_in_meta_until_removed_and_keyed_by_the_partition_uuid(disk: Disk) -> None:
    ephemeral = disk.volume("EPHEMERAL")
    fs_uuid = str(uuid.uuid4())
    mark = mark_mkfs(disk.meta, ephemeral, "xfs", fs_uuid)
    assert mark == MkfsMark(disk.partition_uuid("EPHEMERAL"), "EPHEMERAL", "xfs", fs_uuid)
    # a fresh reader (the next boot) finds it, in both META copies
    contents = MetaPartition(disk.path, offset=disk.meta.offset).read()
    assert contents.state is MetaState.OK
    assert decode_marks(contents.tags[MKFS_PENDING_TAG]) == [mark]
    assert interrupted_mkfs(disk.meta, ephemeral, signature(SignatureType.XFS, fs_uuid))

    unmark_mkfs(disk.meta, ephemeral)
    assert MKFS_PENDING_TAG not in disk.meta.read().tags  # the last mark gone: the tag is deleted
    assert not interrupted_mkfs(disk.meta, ephemeral, signature(SignatureType.XFS, fs_uuid))


def test_marks_of_volumes_formatted_at_once_are_all_kept(disk: Disk) -> None:
    volumes = [disk.volume("STATE"), disk.volume("EPHEMERAL")]
    start = threading.Barrier(len(volumes))
    errors: list[BaseException] = []

    def mark(volume: VolumePartition) -> None:
        start.wait()
        try:
            for _ in range(5):
                mark_mkfs(disk.meta, volume, "xfs", str(uuid.uuid4()))
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=mark, args=(v,)) for v in volumes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(m.volume_id for m in read_marks(disk.meta)) == ["EPHEMERAL", "STATE"]
    unmark_mkfs(disk.meta, volumes[0])
    assert [m.volume_id for m in read_marks(disk.meta)] == ["EPHEMERAL"]


def test_a_new_mark_replaces_the_volumes_stale_one_and_keeps_other_tags(disk: Disk) -> None:
    disk.meta.set(9, b"null")
    stale = MkfsMark(str(uuid.uuid4()), "EPHEMERAL", "xfs", str(uuid.uuid4()))
    other = MkfsMark(str(uuid.uuid4()), "u-data", "ext4", str(uuid.uuid4()))
    disk.meta.set(MKFS_PENDING_TAG, encode_marks([stale, other]))
    fresh = mark_mkfs(disk.meta, disk.volume("EPHEMERAL"), "ext4", str(uuid.uuid4()))
    assert sorted(read_marks(disk.meta), key=lambda m: m.volume_id) == [fresh, other]
    assert disk.meta.get(9) == b"null"


def test_only_the_filesystem_this_mkfs_was_making_counts(disk: Disk) -> None:
    ephemeral = disk.volume("EPHEMERAL")
    fs_uuid = str(uuid.uuid4())
    mark_mkfs(disk.meta, ephemeral, "xfs", fs_uuid)
    assert interrupted_mkfs(disk.meta, ephemeral, signature(SignatureType.XFS, fs_uuid.upper()))
    # somebody's filesystem made after the interrupted mkfs: another UUID, another type, or none
    assert not interrupted_mkfs(disk.meta, ephemeral, signature(SignatureType.XFS, str(uuid.uuid4())))
    assert not interrupted_mkfs(disk.meta, ephemeral, signature(SignatureType.EXT4, fs_uuid))
    assert not interrupted_mkfs(disk.meta, ephemeral, signature(SignatureType.XFS, None))
    # the mark is EPHEMERAL's: the same filesystem found on STATE, or under another volume id, is not it
    assert not interrupted_mkfs(disk.meta, disk.volume("STATE"), signature(SignatureType.XFS, fs_uuid))
    renamed = disk.volume("EPHEMERAL", volume_id="u-other")
    assert not interrupted_mkfs(disk.meta, renamed, signature(SignatureType.XFS, fs_uuid))


def test_a_mark_for_another_partition_uuid_does_not_count(disk: Disk, tmp_path: Path) -> None:
    """The same volume on a new partition (re-provisioned, another disk): the old partition's mark is not
    this partition's, even with the very same filesystem UUID."""
    fs_uuid = str(uuid.uuid4())
    elsewhere = MkfsMark(str(uuid.uuid4()), "EPHEMERAL", "xfs", fs_uuid)
    disk.meta.set(MKFS_PENDING_TAG, encode_marks([elsewhere]))
    assert not interrupted_mkfs(disk.meta, disk.volume("EPHEMERAL"), signature(SignatureType.XFS, fs_uuid))
    other = Disk(tmp_path / "other.img")  # the same layout with its own partition GUIDs
    mark_mkfs(other.meta, other.volume("EPHEMERAL"), "xfs", fs_uuid)
    disk.meta.set(MKFS_PENDING_TAG, other.meta.get(MKFS_PENDING_TAG) or b"")
    assert not interrupted_mkfs(disk.meta, disk.volume("EPHEMERAL"), signature(SignatureType.XFS, fs_uuid))


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\xff\xfe",
        b"hello",
        b"[]",
        b'{"volumed-mkfs-pending": 2, "partitions": {}}',
        b'{"partitions": {}}',
    ],
)
def test_a_value_volumed_did_not_write_is_neither_read_nor_overwritten(disk: Disk, value: bytes) -> None:
    disk.meta.set(MKFS_PENDING_TAG, value)
    before = disk.meta_digest()
    ephemeral = disk.volume("EPHEMERAL")
    with pytest.raises(ForeignValueError):
        interrupted_mkfs(disk.meta, ephemeral, signature(SignatureType.XFS, str(uuid.uuid4())))
    with pytest.raises(
        MkfsMarkError, match=r"META tag 0xf0 on .*system\.img \(offset 1048576\) holds a value"
    ) as info:
        mark_mkfs(disk.meta, ephemeral, "xfs", str(uuid.uuid4()))
    assert f"volumed meta delete {disk.path} 0xf0 --offset 1048576" in str(info.value)
    with pytest.raises(MkfsMarkError):
        unmark_mkfs(disk.meta, ephemeral)
    assert disk.meta_digest() == before


def test_malformed_entries_are_dropped() -> None:
    good = MkfsMark(str(uuid.uuid4()), "EPHEMERAL", "xfs", str(uuid.uuid4()))
    fs = str(uuid.uuid4())
    partitions = {
        good.partition_uuid: {"volume": "EPHEMERAL", "filesystem": "xfs", "uuid": good.filesystem_uuid},
        "not-a-uuid": {"volume": "STATE", "filesystem": "xfs", "uuid": fs},
        str(uuid.UUID(int=0)): {"volume": "STATE", "filesystem": "xfs", "uuid": fs},
        str(uuid.uuid4()): {"volume": "STATE", "filesystem": "xfs", "uuid": str(uuid.UUID(int=0))},
        str(uuid.uuid4()): {"volume": "", "filesystem": "xfs", "uuid": fs},
        str(uuid.uuid4()): {"volume": "STATE", "filesystem": 3, "uuid": fs},
        str(uuid.uuid4()): ["STATE", "xfs", fs],
    }
    value = json.dumps({"volumed-mkfs-pending": 1, "partitions": partitions}).encode()
    assert decode_marks(value) == [good]
    assert decode_marks(b'{"volumed-mkfs-pending": 1}') == []
    assert decode_marks(None) == []


@given(st.binary(max_size=200))
def test_decoding_any_bytes_gives_marks_or_says_foreign(value: bytes) -> None:
    try:
        marks = decode_marks(value)
    except ForeignValueError:
        return
    assert all(isinstance(m, MkfsMark) for m in marks)


@given(
    st.lists(
        st.builds(
            MkfsMark,
            partition_uuid=st.uuids().map(str),
            volume_id=st.text(min_size=1, max_size=20),
            filesystem=st.sampled_from(["xfs", "ext4", "swap"]),
            filesystem_uuid=st.uuids().filter(lambda u: u.int != 0).map(str),
        ),
        max_size=5,
        unique_by=lambda m: m.partition_uuid,
    )
)
def test_encode_decode_round_trip(marks: list[MkfsMark]) -> None:
    marks = [m for m in marks if uuid.UUID(m.partition_uuid).int != 0]
    assert sorted(decode_marks(encode_marks(marks)), key=str) == sorted(marks, key=str)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda v: VolumePartition(v.volume_id, "STATE", v.path, v.offset, v.size, v.disk, v.number),
            "'STATE'",
        ),
        (
            lambda v: VolumePartition(v.volume_id, v.label, v.path, v.offset + MIB, v.size, v.disk, v.number),
            "offset",
        ),
        (
            lambda v: VolumePartition(v.volume_id, v.label, v.path, v.offset, v.size - MIB, v.disk, v.number),
            "bytes",
        ),
        (lambda v: VolumePartition(v.volume_id, v.label, "/dev/x3", 0, v.size, v.disk, 2), "number 2"),
    ],
)
def test_a_partition_that_is_not_the_volumes_is_never_marked(
    disk: Disk, change: Callable[[VolumePartition], VolumePartition], message: str
) -> None:
    before = disk.meta_digest()
    with pytest.raises(MkfsMarkError, match=message):
        mark_mkfs(disk.meta, change(disk.volume("EPHEMERAL")), "xfs", str(uuid.uuid4()))
    assert disk.meta_digest() == before


def test_a_partition_node_is_found_by_number_on_its_disk(disk: Disk) -> None:
    """A block device partition (``/dev/sda3``): located by its number on the parent disk."""
    image = disk.volume("EPHEMERAL")
    node = VolumePartition("EPHEMERAL", "EPHEMERAL", "/dev/sda3", 0, image.size, str(disk.path), image.number)
    assert node.partition_uuid() == disk.partition_uuid("EPHEMERAL")
    with pytest.raises(MkfsMarkError, match="cannot read the partition table of /nonexistent"):
        VolumePartition("EPHEMERAL", "EPHEMERAL", "/dev/sda3", 0, 1, "/nonexistent", 3).partition_uuid()


@pytest.mark.parametrize(
    ("fstype", "kind"),
    [("xfs", SignatureType.XFS), ("ext4", SignatureType.EXT4), ("swap", SignatureType.SWAP)],
)
def test_the_uuid_given_to_mkfs_is_the_one_probed(
    disk: Disk, tmp_path: Path, fstype: str, kind: SignatureType
) -> None:
    """mkfs really gives the filesystem the mark's UUID, so the probe of a (partly) made one matches it."""
    require_tool("mkfs.xfs" if fstype == "xfs" else "mkfs.ext4" if fstype == "ext4" else "mkswap")
    target = tmp_path / "fs.img"
    with target.open("wb") as f:
        f.truncate(64 * MIB)
    ephemeral = disk.volume("EPHEMERAL")
    fs_uuid = str(uuid.uuid4())
    mark_mkfs(disk.meta, ephemeral, fstype, fs_uuid)
    make_filesystem(target, fstype, label="EPHEMERAL", uuid=fs_uuid)
    found = probe_path(target)
    assert found is not None
    assert (found.type, found.uuid) == (kind, fs_uuid)
    assert interrupted_mkfs(disk.meta, ephemeral, found)
    make_filesystem(target, fstype, label="EPHEMERAL")  # somebody else's mkfs: a random UUID
    found = probe_path(target)
    assert found is not None
    assert not interrupted_mkfs(disk.meta, ephemeral, found)


@pytest.mark.parametrize("bad", ["nope", "00000000-0000-0000-0000-000000000000"])
def test_mkfs_refuses_a_bad_uuid_before_running_anything(tmp_path: Path, bad: str) -> None:
    target = tmp_path / "fs.img"
    target.write_bytes(b"\0" * 4096)
    with pytest.raises(UnsupportedFilesystemError, match="UUID"):
        make_filesystem(target, "ext4", uuid=bad)
    assert target.read_bytes() == b"\0" * 4096
