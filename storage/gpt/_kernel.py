"""Telling the kernel what a partition table just written on a block device holds (blocking).

A re-read of the whole table (``BLKRRPART``) is refused with EBUSY while any partition of the disk is in use
(mounted, mapped by dm-crypt, swapped on): on a node whose data disk holds a mounted volume, a partition
provisioned next to it was on disk but never shown by the kernel, and its volume waited for its node for
ever. Then each partition is told on its own (``BLKPG``), as Talos' go-blockdevice does: added where the
kernel lacks it, grown where only its end moved out, removed (and added again) where the table no longer has
it, moves it or makes it smaller. A partition in use cannot be removed, moved or shrunk: that stays an error.
"""

from __future__ import annotations

import contextlib
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

    A partition the table removes, moves or makes smaller is removed from the kernel (then added as the
    table has it), which the kernel refuses while the partition is open (mounted, mapped, swapped on, or
    just open by a reader): a resize would shrink it under its filesystem, which then reads past its end.
    Only a partition that grows is resized in place.

    Raises:
        BlockDeviceError: the kernel refused a change (a partition in use would be removed, moved or shrunk;
            the message names it); the table on disk is written: the next boot shows it.
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
    for number, (start, size) in sorted(known.items()):
        want = wanted.get(number)
        if want is None or want[0] != start or want[1] < size:
            how = "remove" if want is None else "move" if want[0] != start else "shrink"
            _blkpg(path, _DELETE, number, 0, 0, how=how)
            del known[number]
    for number, (start, size) in sorted(wanted.items()):
        had = known.get(number)
        if had is None:
            _blkpg(path, _ADD, number, start, size)
        elif had[1] != size:
            _blkpg(path, _RESIZE, number, start, size)


def _kernel_entries(path: str) -> list[tuple[int, int, int, str | None]]:
    """The partitions the kernel has of block device ``path`` (sysfs): ``(number, start, size, node)``, bytes;
    ``node`` is ``/dev/<name>`` when that node is the partition's (its device number checked), else None.
    Empty for an image file.

    Raises:
        OSError: ``path`` or its sysfs directory cannot be read.
    """
    st = os.stat(path)
    if not stat.S_ISBLK(st.st_mode):
        return []
    disk = Path(f"/sys/dev/block/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}").resolve()
    found = []
    for entry in disk.iterdir():
        try:
            number = int((entry / "partition").read_text())
            start = int((entry / "start").read_text()) * _SYSFS_SECTOR
            size = int((entry / "size").read_text()) * _SYSFS_SECTOR
        except (OSError, ValueError):
            continue  # not a partition (queue/, holders/, ...)
        node = f"/dev/{entry.name}"
        try:
            major, minor = (int(part) for part in (entry / "dev").read_text().split(":"))
            there = os.stat(node)
            ours = stat.S_ISBLK(there.st_mode) and there.st_rdev == os.makedev(major, minor)
        except (OSError, ValueError):
            ours = False
        found.append((number, start, size, node if ours else None))
    return found


def kernel_partitions(path: str) -> dict[int, tuple[int, int]]:
    """The partitions the kernel has of block device ``path``: number -> (start, size) in bytes (sysfs)."""
    return {number: (start, size) for number, start, size, _ in _kernel_entries(path)}


def disk_holders(path: str, *, sysfs: str = "/sys") -> list[str]:
    """The kernel devices holding block device ``path`` itself (sysfs ``holders/``: a device-mapper or md
    device over the disk, not over one of its partitions), sorted; empty for an image file.

    Such a mapping may cover bytes no partition covers, which the GPT and the kernel's partitions show free.
    """
    try:
        st = os.stat(path)
        if not stat.S_ISBLK(st.st_mode):
            return []
        holders = Path(sysfs, "dev", "block", f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}", "holders")
        return sorted(entry.name for entry in holders.iterdir())
    except FileNotFoundError:
        return []


def partition_node(path: str, number: int, start: int, size: int) -> str | None:
    """The device node of partition ``number`` of block device ``path`` as the kernel has it now (``/dev/``
    and the name sysfs gives it) when it covers exactly ``size`` bytes from byte ``start``; None for an image
    file, when the kernel or ``/dev`` lacks it, or when the kernel's partition lies elsewhere (a stale
    one: its node is not that region's)."""
    try:
        entries = _kernel_entries(path)
    except OSError:
        return None
    for found_number, found_start, found_size, node in entries:
        if found_number == number:
            return node if (found_start, found_size) == (start, size) else None
    return None


def whole_disk_users(path: str, *, proc: str = "/proc", sysfs: str = "/sys") -> list[str]:
    """What uses block device ``path`` as a whole, not through a partition: the mounts of it (a filesystem
    on the whole disk, however many partitions the kernel lists of it), loop devices over its node and swap
    on it; empty for an image.

    Its ``O_EXCL`` refusal cannot say this once a partition of it is held too: the kernel refuses both
    alike."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    if not stat.S_ISBLK(st.st_mode):
        return []
    found = []
    wanted = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    try:
        with open(f"{proc}/self/mountinfo", encoding="utf-8", errors="surrogateescape") as table:
            for line in table:
                fields, _, rest = line.partition(" - ")
                left, right = fields.split(), rest.split()
                source = right[1] if len(right) > 1 else ""
                # by its device number, or by its source: btrfs shows an anonymous device number
                if (len(left) > 4 and left[2] == wanted) or _same_block_device(source, st.st_rdev):
                    found.append(f"a mount at {left[4]}")
    except OSError:
        pass
    for backing in Path(sysfs, "block").glob("loop*/loop/backing_file"):
        with contextlib.suppress(OSError):  # a loop device over the disk's node: at any offset it may cover
            if _same_block_device(backing.read_text().strip(), st.st_rdev):  # bytes the GPT shows free
                found.append(f"the loop device /dev/{backing.parent.parent.name}")
    try:
        with open(f"{proc}/swaps", encoding="utf-8", errors="surrogateescape") as swaps:
            for line in list(swaps)[1:]:
                name = line.split()[0] if line.split() else ""
                if _same_block_device(name, st.st_rdev):
                    found.append(f"swap on {name}")
    except OSError:
        pass
    return found


def _same_block_device(name: str, rdev: int) -> bool:
    if not name.startswith("/"):
        return False
    try:
        st = os.stat(name)
    except OSError:
        return False
    return stat.S_ISBLK(st.st_mode) and st.st_rdev == rdev


def partition_held(path: str) -> bool:
    """Whether some partition the kernel has of block device ``path`` is held exclusively (mounted, an open
    mapping, swap): its ``O_EXCL`` open is refused with EBUSY.

    The kernel never lets the whole disk and one of its partitions be held by two holders at once, so when a
    partition is held, the disk's own ``O_EXCL`` refusal says nothing of the disk itself; when none is, that
    refusal means the disk itself is in use (a filesystem or mapping on the whole disk)."""
    try:
        entries = _kernel_entries(path)
    except OSError:
        return False
    for _, _, _, node in entries:
        if node is None:
            continue
        try:
            fd = os.open(node, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
        except OSError as error:
            if error.errno == errno.EBUSY:
                return True
            continue
        os.close(fd)
    return False


def check_kernel_growth(path: str, number: int, start: int, size: int) -> None:
    """Refuse, before anything is written, a grow of partition ``number`` of block device ``path`` to
    ``size`` bytes from ``start`` that would move or shrink the kernel's partition (its GPT entry made
    smaller while it was in use: the kernel kept the old size, which the resize would cut).

    Raises:
        BlockDeviceError: the kernel's partition starts elsewhere or is larger (the message names it).
    """
    had = kernel_partitions(path).get(number)
    if had is not None and (had[0] != start or had[1] > size):
        raise BlockDeviceError(
            errno.EBUSY,
            f"cannot grow partition {number} of {path} to {size} bytes from byte {start}: the kernel has it"
            f" at {had[1]} bytes from byte {had[0]}, which the resize would move or shrink (its table entry"
            " was changed while it was in use); nothing was written",
        )


def _blkpg(path: str, op: int, number: int, start: int, size: int, *, how: str = "") -> None:
    packed = struct.pack("=qqi64s64s4x", start, size, number, b"", b"")
    data = ctypes.create_string_buffer(packed, len(packed))
    arg = struct.pack("@iiiP", op, 0, ctypes.sizeof(data), ctypes.addressof(data))
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, _BLKPG, arg)
    except OSError as exc:
        what = how or _WHAT[op]
        raise BlockDeviceError(
            exc.errno or 0,
            f"cannot {what} partition {number} of {path} in the kernel (the table could not be re-read:"
            f" a partition is in use): {exc.strerror}",
        ) from None
    finally:
        os.close(fd)
