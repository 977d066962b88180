"""Regions of image files, sizes, and size parsing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from volumed.storage.blockdev import (
    BlockDeviceError,
    Region,
    RegionBoundsError,
    device_size,
    format_size,
    is_block_device,
    logical_sector_size,
)

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "img"
    with path.open("wb") as f:
        f.truncate(4 * MIB)
    return path


def test_file_facts(image: Path) -> None:
    assert device_size(image) == 4 * MIB
    assert logical_sector_size(image) == 512
    assert not is_block_device(image)
    assert Region.whole(image) == Region(str(image), 0, 4 * MIB)


def test_region_reads_and_writes_relative_to_its_offset(image: Path) -> None:
    region = Region(str(image), MIB, MIB)
    with region.open(writable=True) as h:
        h.write(0, b"head")
        h.write(MIB - 4, b"tail")
        assert h.read(0, 4) == b"head"
        assert h.read(MIB - 4, 100) == b"tail"  # short at the end of the region
        h.zero(0, 2)
        h.sync()
    data = image.read_bytes()
    assert data[MIB : MIB + 4] == b"\0\0ad"
    assert data[2 * MIB - 4 : 2 * MIB] == b"tail"
    assert data.count(0) == len(data) - 6


def test_region_bounds_are_enforced_and_nothing_is_written(image: Path) -> None:
    region = Region(str(image), MIB, MIB)
    with region.open(writable=True) as h:
        with pytest.raises(RegionBoundsError, match="outside region"):
            h.write(MIB - 2, b"four")
        with pytest.raises(RegionBoundsError):
            h.zero(-1, 2)
    assert image.read_bytes() == bytes(4 * MIB)
    with pytest.raises(RegionBoundsError, match="does not fit"):
        region.sub(MIB - 1, 2)
    assert region.sub(10, 20) == Region(str(image), MIB + 10, 20)
    with pytest.raises(RegionBoundsError, match="runs past the end"):
        Region(str(image), 3 * MIB, 2 * MIB).open()
    with pytest.raises(ValueError, match="negative"):
        Region(str(image), -1, 1)


def test_open_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(BlockDeviceError, match=r"cannot open .*nope: No such file"):
        Region(str(tmp_path / "nope"), 0, 1).open()
    with pytest.raises(BlockDeviceError, match="neither a block device nor a regular file"):
        device_size(tmp_path)


@pytest.mark.parametrize(
    ("value", "text"), [(512, "512 B"), (MIB, "1 MiB"), (100 * MIB, "100 MiB"), (3 << 29, "1.5 GiB")]
)
def test_format_size(value: int, text: str) -> None:
    assert format_size(value) == text
