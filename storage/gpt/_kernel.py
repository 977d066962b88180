"""Telling the kernel what a partition table just written on a block device holds (blocking).

A re-read of the whole table (``BLKRRPART``) is refused with EBUSY while any partition of the disk is in use
(mounted, mapped by dm-crypt, swapped on): on a node whose data disk holds a mounted volume, a partition
provisioned next to it was on disk but never shown by the kernel, and its volume waited for its node for
ever. Then each partition is told on its own (``BLKPG``), as Talos' go-blockdevice does: added where the
kernel lacks it, resized where only its end moved, removed where the table no longer has it. A partition in
use cannot be removed or moved: that stays an error.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Final

from volumed.storage.blockdev import BlockDeviceError, reread_partitions

if TYPE_CHECKING:
    from ._table import PartitionTable

# <linux/blkpg.h>: BLKPG = _IO(0x12, 105); struct blkpg_ioctl_arg {int op, flags, datalen; void *data;} and
# struct blkpg_partition {long long start, length; int pno; char devname[64], volname[64];} (bytes).
_BLKPG: Final = 0x1269
_ADD: Final = 1
_DELETE: Final = 2
_RESIZE: Final = 3
_WHAT: Final = {_ADD: "add", _DELETE: "remove", _RESIZE: "resize"}
_SYSFS_SECTOR: Final = 512


def tell_kernel(path: str, table: PartitionTable) -> None:
    """Make the kernel's partitions of block device ``path`` those of ``table`` (just written there).

    Raises:
        BlockDeviceError: the kernel refused a change (a partition in use would be removed or moved); the
            table on disk is written: the next boot shows it.
    """
    try:
        reread_partitions(path)
        return
    except BlockDeviceError as exc:
        if exc.errno != errno.EBUSY:
            raise
    sector = table.sector_size
    wanted = {p.number: (p.offset(sector), p.size(sector)) for p in table.partitions}
    known = kernel_partitions(path)
    for number, (start, _) in sorted(known.items()):
        if number not in wanted or wanted[number][0] != start:
            _blkpg(path, _DELETE, number, 0, 0)
    for number, (start, size) in sorted(wanted.items()):
        had = known.get(number)
        if had is None or had[0] != start:
            _blkpg(path, _ADD, number, start, size)
        elif had[1] != size:
            _blkpg(path, _RESIZE, number, start, size)


def kernel_partitions(path: str) -> dict[int, tuple[int, int]]:
    """The partitions the kernel has of block device ``path``: number -> (start, size) in bytes (sysfs)."""
    rdev = os.stat(path).st_rdev
    disk = Path(f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}").resolve()
    found = {}
    for entry in disk.iterdir():
        try:
            number = int((entry / "partition").read_text())
            start = int((entry / "start").read_text()) * _SYSFS_SECTOR
            size = int((entry / "size").read_text()) * _SYSFS_SECTOR
        except (OSError, ValueError):
            continue  # not a partition (queue/, holders/, ...)
        found[number] = (start, size)
    return found


def partition_node(path: str, number: int) -> str | None:
    """The device node of partition ``number`` of block device ``path`` as the kernel has it now (``/dev/``
    and the name sysfs gives it), None for an image file or when the kernel or ``/dev`` lacks it."""
    try:
        rdev = os.stat(path).st_rdev
        if not stat.S_ISBLK(os.stat(path).st_mode):
            return None
        disk = Path(f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}").resolve()
        for entry in disk.iterdir():
            if (entry / "partition").is_file() and int((entry / "partition").read_text()) == number:
                node = f"/dev/{entry.name}"
                major, minor = (int(part) for part in (entry / "dev").read_text().split(":"))
                found = os.stat(node)
                if stat.S_ISBLK(found.st_mode) and found.st_rdev == os.makedev(major, minor):
                    return node
    except (OSError, ValueError):
        return None
    return None


def _blkpg(path: str, op: int, number: int, start: int, size: int) -> None:
    packed = struct.pack("=qqi64s64s4x", start, size, number, b"", b"")
    data = ctypes.create_string_buffer(packed, len(packed))
    arg = struct.pack("@iiiP", op, 0, ctypes.sizeof(data), ctypes.addressof(data))
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, _BLKPG, arg)
    except OSError as exc:
        raise BlockDeviceError(
            exc.errno or 0,
            f"cannot {_WHAT[op]} partition {number} of {path} in the kernel (the table could not be re-read:"
            f" a partition is in use): {exc.strerror}",
        ) from None
    finally:
        os.close(fd)
