"""Block device facts from the kernel: size and logical sector size, for devices and image files alike."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
from typing import Final

from ._errors import BlockDeviceError

# <linux/fs.h>: _IOR(0x12, 114, size_t) and _IO(0x12, 104).
BLKGETSIZE64: Final = 0x80081272
BLKSSZGET: Final = 0x1268
BLKRRPART: Final = 0x125F
BLKFLSBUF: Final = 0x1261


def is_block_device(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a block device node (follows symlinks)."""
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def _size_of_fd(fd: int, path: str) -> int:
    st = os.fstat(fd)
    if stat.S_ISBLK(st.st_mode):
        buf = fcntl.ioctl(fd, BLKGETSIZE64, b"\0" * 8)
        return int(struct.unpack("<Q", buf)[0])
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    raise BlockDeviceError(f"{path} is neither a block device nor a regular file")


def device_size(path: str | os.PathLike[str]) -> int:
    """Size in bytes: ``BLKGETSIZE64`` for a block device, the file size for an image file."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise BlockDeviceError(exc.errno, f"cannot open {name}: {exc.strerror}") from None
    try:
        return _size_of_fd(fd, name)
    finally:
        os.close(fd)


def logical_sector_size(path: str | os.PathLike[str]) -> int:
    """The logical sector size: ``BLKSSZGET`` for a block device, 512 for an image file."""
    name = os.fspath(path)
    if not is_block_device(name):
        return 512
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        buf = fcntl.ioctl(fd, BLKSSZGET, b"\0" * 4)
        return int(struct.unpack("<i", buf)[0])
    finally:
        os.close(fd)


def reread_partitions(path: str | os.PathLike[str]) -> None:
    """Ask the kernel to re-read a block device's partition table (``BLKRRPART``); no-op for files.

    A device without partition scanning (a loop device attached without ``-P``) answers EINVAL: that is
    not an error, there is nothing to re-read. Raises ``BlockDeviceError`` (EBUSY) when a partition of the
    device is in use.
    """
    name = os.fspath(path)
    if not is_block_device(name):
        return
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, BLKRRPART)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return
        raise BlockDeviceError(
            exc.errno, f"cannot re-read the partition table of {name}: {exc.strerror}"
        ) from None
    finally:
        os.close(fd)
