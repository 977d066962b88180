"""GPT on image files: write, read back, sector size detection, validation before writing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from volumed.storage.blockdev import BlockDeviceError
from volumed.storage.gpt import (
    LayoutError,
    NoPartitionTableError,
    new_table,
    read_partition_table,
    write_partition_table,
)

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024


def sparse(tmp_path: Path, size: int, name: str = "disk.img") -> Path:
    path = tmp_path / name
    with path.open("wb") as f:
        f.truncate(size)
    return path


@pytest.mark.parametrize("sector_size", [512, 4096])
def test_write_then_read_detects_the_sector_size(tmp_path: Path, sector_size: int) -> None:
    path = sparse(tmp_path, 16 * MIB)
    table, _ = new_table(16 * MIB, sector_size=sector_size).add_partition(size=MIB, name="META")
    write_partition_table(path, table)
    assert read_partition_table(path) == table
    assert path.stat().st_blocks * 512 < 1 * MIB  # still sparse


def test_invalid_table_writes_nothing(tmp_path: Path) -> None:
    from dataclasses import replace

    path = sparse(tmp_path, 16 * MIB)
    table, part = new_table(16 * MIB).add_partition(size=MIB, name="META")
    bad = replace(table, partitions=(replace(part, last_lba=table.total_sectors + 5),))
    with pytest.raises(LayoutError, match="outside the usable area"):
        write_partition_table(path, bad)
    assert path.read_bytes() == bytes(16 * MIB)


def test_disk_smaller_than_the_table_is_refused(tmp_path: Path) -> None:
    path = sparse(tmp_path, 8 * MIB)
    with pytest.raises(ValueError, match="describes a disk of 16777216"):
        write_partition_table(path, new_table(16 * MIB))


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(BlockDeviceError, match=r"cannot open .*missing\.img"):
        read_partition_table(tmp_path / "missing.img")
    with pytest.raises(NoPartitionTableError, match=r"empty\.img: no GPT found"):
        read_partition_table(sparse(tmp_path, MIB, "empty.img"))


@pytest.mark.parametrize("size", [0, 511, 1536, 4096])
def test_files_too_small_for_a_gpt_have_none(tmp_path: Path, size: int) -> None:
    """Looking for the header at 512 and 4096 bytes read past the end of a small file (RegionBoundsError)."""
    path = tmp_path / "tiny.img"
    path.write_bytes(bytes(size))
    with pytest.raises(
        NoPartitionTableError, match=r"tiny\.img: (a device .* too small to hold a GPT|no GPT found)"
    ):
        read_partition_table(path)
