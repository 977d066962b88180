"""A filesystem that already fills its device is not grown, and no tool runs on it (review of issue 12: an
ext4 with grow got `e2fsck -f -p` at every start, and one that needs a manual fsck but mounts fine failed its
volume although there was nothing to grow)."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_root, require_tool
from tests.system.storage._loops import loop_device, unmounting
from volumed.storage.filesystem import FilesystemError, grow_to_device, make_filesystem, mount

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.system

MIB = 1024 * 1024


def _ext4_needing_a_manual_fsck(tmp_path: Path) -> Path:
    """A 32 MiB ext4 where two files claim one block: `e2fsck -p` exits 4 on it (checked)."""
    require_root()
    image = tmp_path / "ext4.img"
    with image.open("wb") as f:
        f.truncate(32 * MIB)
    make_filesystem(image, "ext4")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with loop_device(image, offset=0, size=32 * MIB) as dev, unmounting(mnt):
        mount(dev, mnt)
        (mnt / "a").write_text("one\n")
        (mnt / "b").write_bytes(b"x" * 100_000)
    debugfs = require_tool("debugfs")
    block = subprocess.run(
        [debugfs, "-R", "bmap /b 0", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run([debugfs, "-w", "-R", f"set_inode_field /a block[0] {block}", str(image)], check=True,
                   capture_output=True)  # fmt: skip
    checked = subprocess.run([require_tool("e2fsck"), "-f", "-n", str(image)], capture_output=True)
    assert checked.returncode == 4, checked.stdout
    return image


def test_an_ext4_filling_its_device_is_left_alone_even_when_it_needs_a_manual_fsck(tmp_path: Path) -> None:
    image = _ext4_needing_a_manual_fsck(tmp_path)
    before = image.read_bytes()
    growth = grow_to_device(image, "ext4")
    assert (growth.old_size, growth.new_size) == (32 * MIB, 32 * MIB)
    assert image.read_bytes() == before  # no e2fsck -p, no resize2fs


def test_a_device_that_grew_still_gets_the_check_and_its_error(tmp_path: Path) -> None:
    image = _ext4_needing_a_manual_fsck(tmp_path)
    with image.open("r+b") as f:
        f.truncate(48 * MIB)
    with pytest.raises(FilesystemError, match="e2fsck"):
        grow_to_device(image, "ext4")
