"""grow_to_device on loop devices: xfs (mounted or not) and ext4 fill a device that grew; sizes checked with
xfs_info / dumpe2fs, files with sha256."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests._sizes import file_digests as _files
from tests._sizes import filesystem_size as _size_by_tools
from tests.system.storage._loops import loop_device, unmounting
from volumed.storage.filesystem import FilesystemError, grow_to_device, make_filesystem, mount

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024


def _small_filesystem_with_files(tmp_path: Path, fstype: str) -> tuple[Path, dict[str, str]]:
    """A 64 MiB image whose first 40 MiB hold a filesystem with a few files."""
    image = tmp_path / "fs.img"
    with image.open("wb") as f:
        f.truncate(64 * MIB)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with loop_device(image, size=40 * MIB) as dev:
        make_filesystem(dev, fstype, label="data")
        with unmounting(mnt):
            mount(dev, mnt)
            for i in range(3):
                (mnt / f"f{i}").write_bytes(bytes([i]) * (MIB + i))
            files = _files(mnt)
    return image, files


@pytest.mark.parametrize("fstype", ["xfs", "ext4"])
def test_an_unmounted_filesystem_fills_its_grown_device(tmp_path: Path, fstype: str) -> None:
    image, files = _small_filesystem_with_files(tmp_path, fstype)
    with loop_device(image) as dev:
        before = _size_by_tools(dev, fstype)
        assert before <= 40 * MIB
        growth = grow_to_device(dev, fstype)
        after = _size_by_tools(dev, fstype)
        assert (growth.old_size, growth.new_size, growth.grew) == (before, after, True)
        assert 60 * MIB < after <= 64 * MIB
        again = grow_to_device(dev, fstype)  # already full: nothing more, no error
        assert (again.grew, again.new_size) == (False, after)
        mnt = tmp_path / "mnt"
        with unmounting(mnt):
            mount(dev, mnt)
            assert _files(mnt) == files


def test_a_mounted_xfs_grows_where_it_is_mounted(tmp_path: Path) -> None:
    image, files = _small_filesystem_with_files(tmp_path, "xfs")
    mnt = tmp_path / "mnt"
    with loop_device(image) as dev, unmounting(mnt):
        mount(dev, mnt)
        growth = grow_to_device(dev, "xfs")
        assert growth.grew
        assert growth.new_size == _size_by_tools(dev, "xfs") > 60 * MIB
        assert _files(mnt) == files


def test_no_filesystem_is_a_clear_error(tmp_path: Path) -> None:
    image = tmp_path / "empty.img"
    with image.open("wb") as f:
        f.truncate(16 * MIB)
    with loop_device(image) as dev:
        for fstype in ("xfs", "ext4"):
            with pytest.raises(FilesystemError, match=f"cannot grow the {fstype} filesystem on {dev}: "):
                grow_to_device(dev, fstype)
        with pytest.raises(FilesystemError, match="growing 'swap' is not supported"):
            grow_to_device(dev, "swap")
