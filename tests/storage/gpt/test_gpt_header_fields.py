"""Header fields that make a copy unusable although its CRCs are right (what `sgdisk -v` reports): no
partition entries, a backup header placed past the end of the disk, a backup that does not point back at
LBA 1. Both copies are rewritten by hand (raw offsets, zlib CRCs), as a hostile or broken tool would."""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING

import pytest

from volumed.storage import disklayout
from volumed.storage.gpt import (
    CorruptTableError,
    ReadOnlyTableError,
    read_partition_table,
    write_partition_table,
)

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024
SS = 512


def rewrite(
    path: Path,
    *,
    count: int | None = None,
    primary_alternate: int | None = None,
    backup_alternate: int | None = None,
) -> None:
    """Rewrite both headers (and, with ``count``, both entry arrays) with valid CRCs."""
    total = path.stat().st_size // SS
    with path.open("r+b") as disk:
        for lba in (1, total - 1):
            disk.seek(lba * SS)
            header = bytearray(disk.read(SS))
            entry_lba, n, size = struct.unpack_from("<QII", header, 72)
            disk.seek(entry_lba * SS)
            array = disk.read(n * size)
            if count is not None:
                array = array[: count * size]
                struct.pack_into("<I", header, 80, count)
            struct.pack_into("<I", header, 88, zlib.crc32(array))
            alternate = primary_alternate if lba == 1 else backup_alternate
            if alternate is not None:
                struct.pack_into("<Q", header, 32, alternate)
            struct.pack_into("<I", header, 16, 0)
            struct.pack_into("<I", header, 16, zlib.crc32(bytes(header[:92])))
            disk.seek(lba * SS)
            disk.write(header)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.img"
    disklayout.create_disk_image(path, 256 * MIB)
    return path


def test_a_table_with_no_partition_entries_is_refused(image: Path) -> None:
    """sgdisk -v: 'invalid main GPT header'. Read as a valid empty table, it let provisioning report
    'all 0 partition entries are in use' rather than the broken table."""
    rewrite(image, count=0)
    with pytest.raises(CorruptTableError, match=r"both GPT copies are damaged: .*entry count 0"):
        read_partition_table(image)


def test_a_primary_whose_backup_is_past_the_end_is_not_used(image: Path) -> None:
    """sgdisk -v: 'Disk size is smaller than the main header indicates! Loading secondary header from the
    last sector'. The primary is not trusted; the backup in the last sector is read instead."""
    total = image.stat().st_size // SS
    rewrite(image, primary_alternate=total - 1 + 1_000_000)
    table = read_partition_table(image)
    assert [p.name for p in table.partitions] == ["META", "STATE", "EPHEMERAL"]
    assert any(f"backup at LBA {total - 1 + 1_000_000}, past the end" in d for d in table.damage)
    assert any(d.startswith("primary header at LBA 1") for d in table.damage)


def test_a_primary_whose_backup_is_past_the_end_without_a_backup_is_refused(image: Path) -> None:
    total = image.stat().st_size // SS
    rewrite(image, primary_alternate=total + 5)
    with image.open("r+b") as disk:
        disk.seek((total - 1) * SS)
        disk.write(bytes(SS))
    with pytest.raises(CorruptTableError, match="both GPT copies are damaged"):
        read_partition_table(image)


def test_a_backup_that_does_not_point_at_lba_1_is_not_used(image: Path) -> None:
    rewrite(image, backup_alternate=7)
    with image.open("r+b") as disk:
        disk.seek(SS)
        disk.write(bytes(SS))  # primary gone: only the backup is left
    with pytest.raises(CorruptTableError, match="records its primary at LBA 7, not 1"):
        read_partition_table(image)


def test_a_table_read_past_a_primary_describing_another_disk_is_not_written(image: Path) -> None:
    """The primary's CRCs are right: it may hold partitions the backup lacks. Writing the table read from
    the backup would replace it, so the table is read-only until repaired (sgdisk -e)."""
    total = image.stat().st_size // SS
    rewrite(image, primary_alternate=total + 1000)
    table = read_partition_table(image)
    assert table.read_only.startswith("primary header at LBA 1: records its backup at LBA")
    grown = table.remove_partition(3)
    before = image.read_bytes()
    with pytest.raises(
        ReadOnlyTableError, match=rf"{image}: the GPT is not written: primary header at LBA 1"
    ):
        write_partition_table(image, grown, reread=False)
    assert image.read_bytes() == before


def test_a_table_read_past_a_zeroed_primary_is_still_repaired_by_writing(image: Path) -> None:
    with image.open("r+b") as disk:
        disk.seek(SS)
        disk.write(bytes(SS))
    table = read_partition_table(image)
    assert table.damage
    assert not table.read_only
    write_partition_table(image, table, reread=False)
    assert read_partition_table(image).damage == ()
