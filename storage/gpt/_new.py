"""A new GPT on a disk that has none: sized for that disk, and written protective MBR last (blocking)."""

from __future__ import annotations

import os

from volumed.storage.blockdev import Region, is_block_device, logical_sector_size

from ._codec import encode_table
from ._io import disk_region_for
from ._kernel import tell_kernel
from ._table import PartitionTable, new_table


def new_disk_table(path: str | os.PathLike[str], *, sector_size: int | None = None) -> PartitionTable:
    """An empty GPT for the disk at ``path`` (nothing is written): its size is the device's or file's, its
    sector size a block device's logical one (an image file's ``sector_size``, 512 unless given), whole
    sectors only.

    Raises:
        LayoutError: the disk is too small for a GPT, or the sector size is not 512 or 4096.
        BlockDeviceError: the path cannot be opened.
    """
    name = os.fspath(path)
    size = Region.whole(name).size
    if is_block_device(name):  # the device's own, whatever the caller assumed (a 4Kn disk passed as --disk)
        sector_size = logical_sector_size(name)
    elif sector_size is None:
        sector_size = 512
    return new_table(size - size % sector_size, sector_size=sector_size)


def write_new_disk_table(path: str | os.PathLike[str], table: PartitionTable) -> None:
    """Write ``table`` onto a disk that had no GPT: both GPT copies first and synced, the protective MBR last.

    A power cut before the MBR leaves a GPT that reads (the MBR is not needed to read it), so the partition
    in it is found again rather than a disk that is neither blank nor partitioned. (A cut while the GPT
    copies themselves are written can still leave bytes that make the disk not blank: it is then left alone.)

    Raises what ``write_partition_table`` raises; nothing is written when the table is invalid or larger than
    the disk.
    """
    name = os.fspath(path)
    writes = encode_table(table)
    region = disk_region_for(name, table)
    with region.open(writable=True) as handle:
        for offset, data in sorted(writes, key=lambda write: write[0] == 0):  # the MBR (offset 0) last
            if offset == 0:
                handle.sync()
            handle.write(offset, data)
        handle.sync()
    tell_kernel(name, table)
