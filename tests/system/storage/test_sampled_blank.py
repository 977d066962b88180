"""A partition whose first MiB is zero is not blank when data lies further on (issue 15 review, item 2).

Blank used to mean "no signature and the first MiB zero": data at 1 MiB + 4 KiB, a btrfs whose primary
superblock was zeroed (mirror at 64 MiB), an ext4 with its first MiB zeroed (backup superblock at 128 MiB)
and a nested GPT with only its backup header at the end were all LUKS-formatted or mkfs'd. Now every sample
point of `blank_sample_ranges` must be zero too, `wipe_region` zeroes the same points (so a partition
volumed made or wiped stays formattable), and mkfs never discards.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_tool
from tests.system.storage._loops import loop_device
from volumed.storage.blockdev import Region
from volumed.storage.filesystem import make_filesystem
from volumed.storage.probe import ContentKind, examine_region, wipe_region

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1 << 20
OFFSET = 4 * MIB  # the partition inside a disk image
SIZE = 300 * MIB


def _zero(path: Path, at: int, length: int) -> None:
    with path.open("r+b") as f:
        f.seek(at)
        f.write(bytes(length))


def _part(tmp_path: Path, fill: str) -> Path:
    """A disk image whose partition at OFFSET holds ``fill``, then has its first MiB zeroed."""
    image = tmp_path / "disk.img"
    part = tmp_path / "part.img"
    part.write_bytes(b"")
    os.truncate(part, SIZE)
    if fill == "data":
        with part.open("r+b") as f:
            f.seek(MIB + 4096)
            f.write(os.urandom(4 * MIB))
    elif fill == "btrfs":
        subprocess.run([require_tool("mkfs.btrfs"), "-q", "-f", str(part)], check=True)
    elif fill == "ext4":
        subprocess.run([require_tool("mkfs.ext4"), "-q", "-F", "-b", "4096", str(part)], check=True)
    elif fill == "gpt":
        subprocess.run([require_tool("sgdisk"), "-o", "-n", "1:2048:0", str(part)], check=True,
                       capture_output=True)  # fmt: skip
    _zero(part, 0, MIB)
    with image.open("wb") as out:
        out.truncate(OFFSET)
        out.seek(OFFSET)
        out.write(part.read_bytes())
        out.truncate(OFFSET + SIZE + MIB)
    part.unlink()
    return image


@pytest.mark.parametrize("fill", ["data", "btrfs", "ext4", "gpt"])
def test_first_mib_zero_but_data_further_on_is_not_blank(tmp_path: Path, fill: str) -> None:
    image = _part(tmp_path, fill)
    region = Region(str(image), OFFSET, SIZE)
    blkid = subprocess.run(
        [require_tool("blkid"), "-p", "-O", str(OFFSET), "-S", str(SIZE), str(image)], capture_output=True
    )
    assert blkid.returncode == 2  # libblkid finds nothing either: only the sample points tell
    content = examine_region(region)
    assert content.kind is ContentKind.UNKNOWN, content
    assert content.nonzero_at is not None
    assert content.nonzero_at >= MIB
    assert f"byte {content.nonzero_at} is not zero" in content.describe()
    wipe_region(region)  # what provisioning and `volumed wipe` do: the same points, zeroed
    assert examine_region(region).kind is ContentKind.BLANK


def test_a_wiped_partition_is_blank_at_its_end(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    with image.open("wb") as f:
        f.truncate(OFFSET + SIZE + MIB)
        f.seek(OFFSET + SIZE - 4096)
        f.write(b"x" * 4096)  # the last MiB (a nested GPT backup header lives there)
    region = Region(str(image), OFFSET, SIZE)
    assert examine_region(region).kind is ContentKind.UNKNOWN
    wipe_region(region)
    assert examine_region(region).kind is ContentKind.BLANK


@pytest.mark.parametrize("fstype", ["xfs", "ext4"])
def test_mkfs_does_not_discard(tmp_path: Path, fstype: str) -> None:
    """A loop device passes discards on as holes in its file: data the samples did not see must survive."""
    image = tmp_path / "fs.img"
    image.write_bytes(b"")
    os.truncate(image, SIZE)
    data = os.urandom(MIB)
    at = 50 * MIB + 12 * 4096  # no sample point, no metadata of either filesystem here
    with image.open("r+b") as f:
        f.seek(at)
        f.write(data)
    with loop_device(image) as device:
        make_filesystem(device, fstype, label="t")
    with image.open("rb") as f:
        f.seek(at)
        assert f.read(MIB) == data
