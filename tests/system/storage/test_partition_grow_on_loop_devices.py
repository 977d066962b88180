"""grow_partition_on_disk on a block device: the kernel's partition grows too (BLKPG), even while another
partition of the disk is held open (where a re-read of the whole table, BLKRRPART, answers EBUSY).

This host's kernel has no partition-table parsers, so the test adds the kernel's partitions itself with
BLKPG_ADD_PARTITION on a loop device attached with partition support (``losetup -P``).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import struct
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from tests._tools import require_root, require_tool
from volumed.storage.gpt import grow_partition_on_disk

if TYPE_CHECKING:
    from collections.abc import Iterator

MIB = 1024 * 1024
BLKPG = 0x1269
BLKPG_ADD_PARTITION = 1


@contextlib.contextmanager
def _partitioned_loop(image: Path) -> Iterator[str]:
    require_root()
    losetup = require_tool("losetup")
    dev = subprocess.run(
        [losetup, "-P", "--find", "--show", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run([losetup, "--detach", dev], check=False)


def _add_partition(dev: str, number: int, start: int, length: int) -> None:
    packed = struct.pack("=qqi64s64s4x", start, length, number, b"", b"")
    data = ctypes.create_string_buffer(packed, len(packed))
    fd = os.open(dev, os.O_RDONLY)
    try:
        fcntl.ioctl(
            fd, BLKPG, struct.pack("@iiiP", BLKPG_ADD_PARTITION, 0, len(packed), ctypes.addressof(data))
        )
    finally:
        os.close(fd)


def _kernel_size(dev: str, number: int) -> int:
    name = Path(dev).name
    return int(Path(f"/sys/block/{name}/{name}p{number}/size").read_text()) * 512


def test_the_kernel_partition_grows_while_another_partition_is_open(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    with image.open("wb") as f:
        f.truncate(48 * MIB)
    script = "label: gpt\nstart=2048, size=2048, name=META\nstart=4096, size=92160, name=EPHEMERAL\n"
    subprocess.run([require_tool("sfdisk"), "-q", str(image)], input=script, text=True, check=True)
    with _partitioned_loop(image) as dev:
        _add_partition(dev, 1, MIB, MIB)
        _add_partition(dev, 2, 2 * MIB, 45 * MIB)
        with image.open("r+b") as f:
            f.truncate(96 * MIB)
        subprocess.run([require_tool("losetup"), "--set-capacity", dev], check=True)
        held = os.open(f"{dev}p1", os.O_RDONLY | os.O_EXCL)  # META in use
        try:
            growth = grow_partition_on_disk(dev, 2)
            assert (growth.old_size, growth.new_size) == (45 * MIB, 93 * MIB)
            assert _kernel_size(dev, 2) == 93 * MIB
            assert _kernel_size(dev, 1) == MIB
        finally:
            os.close(held)
    done = subprocess.run([require_tool("sgdisk"), "-v", str(image)], capture_output=True, text=True)
    assert "No problems found" in done.stdout, done.stdout
