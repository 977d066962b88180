"""Regions smaller than a format's fixed offsets: no such signature, never a read outside the region.

Region handles refuse a read that starts past their end, so these run over real files (a lenient
in-memory reader hid the bug: one tiny ``--disk`` stopped discovery of every disk).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from volumed.storage.blockdev import Region
from volumed.storage.probe import is_zeroed, probe_region, wipe_region

if TYPE_CHECKING:
    from pathlib import Path


def image(tmp_path: Path, size: int) -> Path:
    path = tmp_path / f"{size}.img"
    path.write_bytes(bytes(size))
    return path


# 0 and 1536 bytes: the reported disks; the others sit around the detectors' offsets (MBR, ext, GPT at
# 4096-byte sectors, swap pages, btrfs at 64 KiB).
@pytest.mark.parametrize("size", [0, 1, 511, 512, 1024, 1536, 2048, 4095, 4096, 8192, 65536, 65536 + 100])
def test_small_zeroed_region_has_no_signature(tmp_path: Path, size: int) -> None:
    assert probe_region(Region.whole(image(tmp_path, size))) is None


def test_small_sub_region_ignores_signatures_past_its_end(tmp_path: Path) -> None:
    path = image(tmp_path, 2 * 65536)
    with path.open("r+b") as f:
        f.seek(0x10000 + 0x40)
        f.write(b"_BHRfS_M")  # a btrfs magic after the region, in the same file
    assert probe_region(Region(str(path), 0, 1536)) is None


@pytest.mark.parametrize("size", [0, 1536])
def test_small_region_is_zeroed_and_wipes(tmp_path: Path, size: int) -> None:
    region = Region.whole(image(tmp_path, size))
    with region.open() as handle:
        assert is_zeroed(handle.read)
    assert wipe_region(region) == []
