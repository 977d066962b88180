"""Growing one partition into the free space right after it (Talos' ``grow``), at most to a maximum size."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
from dataclasses import dataclass, replace
from typing import Final, final

from volumed.storage.blockdev import BlockDeviceError, is_block_device, reread_partitions

from ._io import read_partition_table, write_partition_table
from ._kernel import check_kernel_growth
from ._table import DEFAULT_ALIGNMENT, MIB, Partition, PartitionTable

#: Talos does not grow a partition by 1 MiB or less (``volumes/grow.go``): such a step is skipped.
MIN_GROWTH: Final = MIB


def fit_to_disk(table: PartitionTable) -> PartitionTable:
    """``table`` with its usable area reaching its disk's end (the backup moves there) when the disk grew.

    A table read from a disk that grew since it was written still ends where the old disk ended; Talos (and
    ``sgdisk -e``) move the backup to the new end. A table whose usable area already reaches the end, or past
    it, is returned as it is.
    """
    end = table.total_sectors - 2 - table.entry_sectors
    return table.resized(table.disk_size) if table.last_usable_lba < end else table


def grow_partition(
    table: PartitionTable,
    number: int,
    *,
    max_size: int = 0,
    relative_max_size: int = 0,
    alignment: int = DEFAULT_ALIGNMENT,
    min_growth: int = MIN_GROWTH,
) -> tuple[PartitionTable, Partition]:
    """A table in which partition ``number`` takes the free space directly after it, and that partition.

    The table is first fitted to its disk (`fit_to_disk`). The new end is the last sector before the next
    partition (or the end of the usable area), rounded down so the partition ends just before an
    ``alignment`` boundary; with ``max_size`` (bytes, 0 = no limit) the partition becomes at most that large.
    With ``relative_max_size`` (a percent, as a ``maxSize`` of ``50%``) it becomes at most that share of the
    space from its start to that end: what provisioning gave it out of the same gap, so a partition made
    at 50% stays there until the disk grows, then takes half of the new space. (Talos' grow ignores a
    relative maxSize and takes all the free space at the next boot.)
    A partition never shrinks, and a growth of ``min_growth`` bytes or less is not made (as in Talos): the
    partition comes back unchanged, in the fitted table. Pure: nothing is written.

    Raises:
        LayoutError: there is no partition ``number``, or the table does not fit its disk.
    """
    fitted = fit_to_disk(table)
    part = fitted.partition(number)
    ss = fitted.sector_size
    following = [p.first_lba for p in fitted.partitions if p.first_lba > part.last_lba]
    limit = min(following, default=fitted.last_usable_lba + 1) - 1
    align = max(1, alignment // ss)
    end = (limit + 1) // align * align - 1
    if max_size > 0:
        end = min(end, part.first_lba + max_size // ss - 1)
    if relative_max_size > 0:
        share = (end - part.first_lba + 1) * relative_max_size // 100 // align * align
        end = min(end, part.first_lba + share - 1)
    if (end - part.last_lba) * ss <= min_growth:
        return fitted, part
    grown = replace(part, last_lba=end)
    result = replace(fitted, partitions=tuple(grown if p.number == number else p for p in fitted.partitions))
    result.validate()
    return result, grown


@final
@dataclass(frozen=True)
class PartitionGrowth:
    """What `grow_partition_on_disk` did to one partition: its byte offset and its sizes before and after."""

    number: int
    offset: int
    old_size: int
    new_size: int

    @property
    def grew(self) -> bool:
        """Whether the partition is larger now."""
        return self.new_size > self.old_size


def grow_partition_on_disk(
    path: str | os.PathLike[str], number: int, *, max_size: int = 0, relative_max_size: int = 0
) -> PartitionGrowth:
    """Grow partition ``number`` of the disk (or image) at ``path`` as `grow_partition` says (blocking).

    Only a partition that grows is written: both GPT copies (`write_partition_table`, the backup at the
    disk's new end first). A damaged table (one copy torn by a power cut during an earlier grow) is written
    whole again even when the partition needs no growth. On a block device the kernel is then told the
    partition's new size (``BLKPG_RESIZE_PARTITION``, which works while other partitions of the disk are in
    use, unlike a re-read of the whole table); a disk the kernel keeps no partition of is re-read instead.
    A grow that would move or shrink the kernel's partition (its entry made smaller while it was in use) is
    refused before anything is written (`check_kernel_growth`).

    Raises:
        GPTError: the table cannot be read, has no partition ``number`` or cannot be written.
        BlockDeviceError: the kernel's partition would move or shrink (nothing written), or the kernel
            refused the new partition size (the table on disk is grown: the next boot finds it grown).
    """
    name = os.fspath(path)
    table = read_partition_table(name)
    old = table.partition(number)
    grown_table, grown = grow_partition(table, number, max_size=max_size, relative_max_size=relative_max_size)
    ss = table.sector_size
    growth = PartitionGrowth(number, old.offset(ss), old.size(ss), grown.size(ss))
    if not growth.grew and (not table.damage or table.read_only):
        return growth
    block = is_block_device(name)
    if block:
        check_kernel_growth(name, number, grown.offset(ss), grown.size(ss))
    write_partition_table(name, grown_table, reread=False)
    if block:
        _tell_kernel(name, grown, ss)
    return growth


# <linux/blkpg.h>: BLKPG = _IO(0x12, 105); struct blkpg_ioctl_arg {int op, flags, datalen; void *data;} and
# struct blkpg_partition {long long start, length; int pno; char devname[64], volname[64];} (152 bytes).
_BLKPG: Final = 0x1269
_BLKPG_RESIZE_PARTITION: Final = 3


def _tell_kernel(disk: str, partition: Partition, sector_size: int) -> None:
    """Resize the kernel's view of one partition (``BLKPG_RESIZE_PARTITION``); re-read the table if the
    kernel has no such partition (no partition nodes for this disk)."""
    start, length = partition.offset(sector_size), partition.size(sector_size)
    packed = struct.pack("=qqi64s64s4x", start, length, partition.number, b"", b"")
    data = ctypes.create_string_buffer(packed, len(packed))
    arg = struct.pack("@iiiP", _BLKPG_RESIZE_PARTITION, 0, ctypes.sizeof(data), ctypes.addressof(data))
    fd = os.open(disk, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, _BLKPG, arg)
    except OSError as exc:
        if exc.errno not in (errno.ENXIO, errno.EINVAL):
            raise BlockDeviceError(
                exc.errno,
                f"cannot tell the kernel partition {partition.number} of {disk} grew: {exc.strerror}",
            ) from None
        reread_partitions(disk)
    finally:
        os.close(fd)
