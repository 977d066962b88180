"""set_size_limit on real loop devices (root): a device grows with its size limit, keeps its file, offset and
flags, also while mounted; errors name the device."""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_root, require_tool
from volumed.storage import loop

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MiB = 1 << 20


@pytest.fixture
def image(tmp_path: Path) -> Iterator[Path]:
    require_root()
    path = tmp_path / "disk.img"
    with path.open("wb") as handle:
        handle.truncate(400 * MiB)
    yield path
    for device in loop.find_attachments(path):
        with contextlib.suppress(loop.LoopError):
            loop.detach(device)


def test_a_mounted_device_grows_with_its_size_limit(image: Path, tmp_path: Path) -> None:
    device = loop.attach(image, offset=MiB, size_limit=300 * MiB)
    subprocess.run([require_tool("mkfs.xfs"), "-q", device.path], check=True)
    target = tmp_path / "mnt"
    target.mkdir()
    subprocess.run([require_tool("mount"), device.path, str(target)], check=True)
    try:
        (target / "kept").write_bytes(b"while resized")
        grown = loop.set_size_limit(device, 390 * MiB)
        assert (grown.path, grown.offset, grown.size_limit, grown.size) == (
            device.path,
            MiB,
            390 * MiB,
            390 * MiB,
        )
        assert (grown.read_only, grown.autoclear, grown.backing_file) == (False, False, device.backing_file)
        backing = loop.loop_backing_of(device.path)
        assert backing is not None
        assert (backing.inode, backing.offset, backing.size_limit) == (os.stat(image).st_ino, MiB, 390 * MiB)
        subprocess.run([require_tool("xfs_growfs"), str(target)], check=True, capture_output=True)
        assert os.statvfs(target).f_blocks * os.statvfs(target).f_frsize > 300 * MiB
        assert (target / "kept").read_bytes() == b"while resized"
    finally:
        subprocess.run([require_tool("umount"), str(target)], check=True)


def test_errors_name_the_device(image: Path) -> None:
    device = loop.attach(image, size_limit=8 * MiB)
    with pytest.raises(loop.LoopError, match="negative size limit"):
        loop.set_size_limit(device, -1)
    loop.detach(device)
    with pytest.raises(loop.LoopError, match=rf"{device.path}"):
        loop.set_size_limit(device.path, 16 * MiB)
