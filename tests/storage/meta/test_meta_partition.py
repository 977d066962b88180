"""META on an image file or a region of a disk image: round trip, fallback, repair, locks, pure reads."""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from typing import TYPE_CHECKING

import pytest

from volumed.storage.meta import (
    ADV_SIZE,
    BLOCK_LENGTH,
    PARTITION_SIZE,
    MetaCorruptError,
    MetaDeviceError,
    MetaPartition,
    MetaState,
    MetaTag,
    MetaValueError,
    decode_block,
    encode_block,
    read_uuid_override,
    write_uuid_override,
)

if TYPE_CHECKING:
    from pathlib import Path

UUID = b"12345678-1234-5678-1234-567812345678"


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "meta.img"
    path.write_bytes(bytes(PARTITION_SIZE))
    return path


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), os.stat(path).st_mtime_ns


def test_blank_partition(image: Path) -> None:
    contents = MetaPartition(image).read()
    assert contents.state is MetaState.BLANK
    assert dict(contents.tags) == {}
    assert [copy.valid for copy in contents.copies] == [False, False]
    assert contents.copies[1].offset == BLOCK_LENGTH
    assert contents.free_bytes == 262104


def test_round_trip_writes_both_copies(image: Path) -> None:
    meta = MetaPartition(image)
    assert meta.set(MetaTag.UUID_OVERRIDE, UUID)
    assert meta.set(9, b"null")
    assert meta.get(15) == UUID
    assert meta.get(9) == b"null"
    assert meta.get(10) is None
    data = image.read_bytes()
    expected = encode_block({9: b"null", 15: UUID})
    assert data[:BLOCK_LENGTH] == expected
    assert data[BLOCK_LENGTH:ADV_SIZE] == expected
    assert data[ADV_SIZE:] == bytes(PARTITION_SIZE - ADV_SIZE)
    contents = meta.read()
    assert contents.state is MetaState.OK
    assert contents.free_bytes == 262104 - (8 + 4) - (8 + len(UUID))


def test_unchanged_set_and_missing_delete_write_nothing(image: Path) -> None:
    meta = MetaPartition(image)
    meta.set(9, b"null")
    before = fingerprint(image)
    time.sleep(0.01)
    assert not meta.set(9, b"null")
    assert not meta.delete(10)
    assert fingerprint(image) == before


def test_delete(image: Path) -> None:
    meta = MetaPartition(image)
    meta.set(9, b"null")
    meta.set(15, UUID)
    assert meta.delete(9)
    assert dict(meta.read().tags) == {15: UUID}


def test_one_corrupt_copy_falls_back_and_repairs(image: Path) -> None:
    meta = MetaPartition(image)
    meta.set(15, UUID)
    good = image.read_bytes()
    for offset in (0, BLOCK_LENGTH):
        with image.open("r+b") as handle:
            handle.seek(offset + 100)
            handle.write(b"garbage")
        contents = meta.read()
        assert contents.state is MetaState.DEGRADED
        assert dict(contents.tags) == {15: UUID}
        assert [copy.valid for copy in contents.copies] == [offset != 0, offset == 0]
        assert contents.copies[0 if offset == 0 else 1].error == "checksum mismatch"
        assert meta.repair()
        assert image.read_bytes() == good
        assert meta.read().state is MetaState.OK
        assert not meta.repair()


def test_write_on_a_degraded_meta_rewrites_both_copies(image: Path) -> None:
    meta = MetaPartition(image)
    meta.set(15, UUID)
    with image.open("r+b") as handle:
        handle.seek(BLOCK_LENGTH)
        handle.write(b"\xff" * 4)
    meta.set(9, b"null")
    assert meta.read().state is MetaState.OK


def test_corrupt_area_is_read_as_empty_and_not_overwritten(image: Path) -> None:
    image.write_bytes(b"\x55" * PARTITION_SIZE)
    meta = MetaPartition(image)
    contents = meta.read()
    assert contents.state is MetaState.CORRUPT
    assert dict(contents.tags) == {}
    before = fingerprint(image)
    with pytest.raises(MetaCorruptError) as raised:
        meta.set(9, b"null")
    assert "refusing to overwrite it" in str(raised.value)
    with pytest.raises(MetaCorruptError):
        meta.repair()
    assert fingerprint(image) == before
    assert meta.set(9, b"null", force=True)
    assert meta.read().state is MetaState.OK


def test_value_too_large_changes_nothing(image: Path) -> None:
    meta = MetaPartition(image)
    meta.set(9, b"x" * 1000)
    before = fingerprint(image)
    with pytest.raises(MetaValueError) as raised:
        meta.set(10, b"y" * 262000)
    assert str(raised.value) == (
        "value for tag 10 is 262000 bytes; META has room for 261088 "
        "(262104 bytes in total, 8 per entry header)"
    )
    assert fingerprint(image) == before
    # Replacing a value may use the space of the old one.
    assert meta.set(9, b"z" * (262104 - 8))
    assert meta.get(9) == b"z" * (262104 - 8)


@pytest.mark.parametrize("tag", [0, 256])
def test_tag_out_of_range(image: Path, tag: int) -> None:
    with pytest.raises(MetaValueError) as raised:
        MetaPartition(image).set(tag, b"x")
    assert str(raised.value) == f"tag {tag} is out of range (1 to 255)"


def test_region_of_a_disk_image(tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\xaa" * (3 * PARTITION_SIZE))
    with disk.open("r+b") as handle:
        handle.seek(PARTITION_SIZE)
        handle.write(bytes(PARTITION_SIZE))
    meta = MetaPartition(disk, offset=PARTITION_SIZE)
    assert meta.read().state is MetaState.BLANK
    meta.set(15, UUID)
    data = disk.read_bytes()
    assert data[:PARTITION_SIZE] == b"\xaa" * PARTITION_SIZE
    assert data[2 * PARTITION_SIZE :] == b"\xaa" * PARTITION_SIZE
    assert decode_block(data[PARTITION_SIZE : PARTITION_SIZE + BLOCK_LENGTH]) == {15: UUID}
    assert MetaPartition(disk).read().state is MetaState.CORRUPT


def test_too_small(tmp_path: Path) -> None:
    small = tmp_path / "small.img"
    small.write_bytes(bytes(ADV_SIZE - 1))
    with pytest.raises(MetaDeviceError) as raised:
        MetaPartition(small).read()
    assert (
        str(raised.value)
        == f"{small} is too small for META at offset 0: needs 524288 bytes there, has 524287"
    )
    with pytest.raises(MetaDeviceError, match=r"has 0$"):
        MetaPartition(small, offset=PARTITION_SIZE).read()


def test_missing_device(tmp_path: Path) -> None:
    with pytest.raises(MetaDeviceError) as raised:
        MetaPartition(tmp_path / "nope").read()
    assert str(raised.value) == f"cannot open {tmp_path / 'nope'}: No such file or directory"


def test_negative_offset(image: Path) -> None:
    with pytest.raises(ValueError, match="offset must not be negative"):
        MetaPartition(image, offset=-1)


def test_read_only_file_can_be_read(image: Path) -> None:
    MetaPartition(image).set(15, UUID)
    image.chmod(0o444)
    try:
        assert MetaPartition(image).get(15) == UUID
    finally:
        image.chmod(0o644)


def test_writer_waits_for_a_reader_lock(image: Path) -> None:
    meta = MetaPartition(image)
    done = threading.Event()
    with image.open("rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_SH)
        writer = threading.Thread(target=lambda: (meta.set(15, UUID), done.set()))
        writer.start()
        assert not done.wait(0.2), "the write went ahead while a shared lock was held"
        # Readers share the lock.
        assert meta.read().state is MetaState.BLANK
        fcntl.flock(holder.fileno(), fcntl.LOCK_UN)
    writer.join(5)
    assert done.is_set()
    assert meta.get(15) == UUID


def test_lock_timeout(image: Path) -> None:
    meta = MetaPartition(image, lock_timeout=0.1)
    with image.open("rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        with pytest.raises(MetaDeviceError) as raised:
            meta.read()
        assert str(raised.value) == f"{image} is locked by another process (waited 0.1 s)"
        before = image.read_bytes()
        with pytest.raises(MetaDeviceError):
            meta.set(9, b"null")
        assert image.read_bytes() == before


def test_unbounded_lock_wait(image: Path) -> None:
    meta = MetaPartition(image, lock_timeout=None)
    meta.set(15, UUID)
    assert meta.get(15) == UUID


def test_repr(image: Path) -> None:
    assert repr(MetaPartition(image, offset=4096)) == f"MetaPartition({str(image)!r}, offset=4096)"


def test_uuid_override(image: Path) -> None:
    meta = MetaPartition(image)
    assert read_uuid_override(meta) is None
    assert write_uuid_override(meta, UUID.decode())
    assert not write_uuid_override(meta, UUID.decode())
    assert read_uuid_override(meta) == UUID.decode()
    assert meta.get(0x0F) == UUID
    before = image.read_bytes()
    with pytest.raises(MetaValueError) as raised:
        write_uuid_override(meta, "not-a-uuid")
    assert str(raised.value) == "not a UUID: 'not-a-uuid'"
    assert image.read_bytes() == before
    meta.set(0x0F, b"\xff\xfe")
    with pytest.raises(MetaValueError) as raised:
        read_uuid_override(meta)
    assert str(raised.value) == "tag 0x0f holds 2 bytes that are not UTF-8 text"
