"""Reading and writing a GPT on an image file or block device (blocking: run in a worker thread)."""

from __future__ import annotations

import os

from volumed.storage.blockdev import Region, is_block_device, logical_sector_size

from ._codec import ReadAt, decode_table, encode_table
from ._errors import CorruptTableError, InvalidTableError, ReadOnlyTableError
from ._kernel import tell_kernel
from ._structs import SIGNATURE
from ._table import SECTOR_SIZES, PartitionTable


def _guess_sector_size(read: ReadAt, disk_size: int) -> int:
    """For an image file: the sector size whose LBA 1 holds a GPT signature (512 first), else 512."""
    for size in SECTOR_SIZES:
        if size + len(SIGNATURE) <= disk_size and read(size, len(SIGNATURE)) == SIGNATURE:
            return size
    return 512


def read_partition_table(path: str | os.PathLike[str], *, sector_size: int | None = None) -> PartitionTable:
    """The GPT of a disk image or block device.

    The sector size is the device's logical sector size (``BLKSSZGET``); for an image file it is found
    from where the header is (LBA 1 at 512 or 4096 bytes) unless given.

    Raises:
        NoPartitionTableError: there is no GPT.
        InvalidTableError: the table describes an impossible layout (overlapping partitions, ...).
        CorruptTableError: both copies are damaged.
        BlockDeviceError: the path cannot be opened.
    """
    name = os.fspath(path)
    region = Region.whole(name)
    with region.open() as handle:
        if sector_size is None:
            sector_size = (
                logical_sector_size(name)
                if is_block_device(name)
                else _guess_sector_size(handle.read, region.size)
            )
        try:
            return decode_table(handle.read, region.size, sector_size)
        except InvalidTableError as exc:
            raise InvalidTableError(f"disk {name}: {exc}", exc.partitions) from None
        except CorruptTableError as exc:
            raise type(exc)(f"{name}: {exc}") from None


def disk_region_for(name: str, table: PartitionTable) -> Region:
    """The whole disk at ``name``, checked to hold ``table``: at least its size, and its sector size.

    Raises:
        ValueError: the disk is smaller than the table, or its logical sectors are of another size.
    """
    region = Region.whole(name)
    if region.size < table.disk_size:
        raise ValueError(f"{name} has {region.size} bytes, the table describes a disk of {table.disk_size}")
    if is_block_device(name) and logical_sector_size(name) != table.sector_size:
        raise ValueError(
            f"{name} has {logical_sector_size(name)}-byte sectors, the table {table.sector_size}-byte ones"
        )
    return region


def write_partition_table(
    path: str | os.PathLike[str], table: PartitionTable, *, reread: bool = True
) -> None:
    """Write both GPT copies and the protective MBR, then fsync; on a block device the kernel is told of the
    partitions (``BLKRRPART``, else ``BLKPG`` one by one while a partition is in use: `tell_kernel`).

    The backup copy is written and synced before the primary one, so a cut in between leaves one whole copy.

    The table is validated first; on a validation error, or a ``read_only`` table (``ReadOnlyTableError``),
    nothing is written. The disk must be at least as
    large as the table says.
    """
    name = os.fspath(path)
    try:
        writes = encode_table(table)
    except ReadOnlyTableError as exc:
        raise ReadOnlyTableError(f"{name}: {exc}") from None
    region = disk_region_for(name, table)
    # The backup copy first, durable before the primary changes: a cut while the primary is written leaves a
    # whole backup in the last sector, where a reader looks when the primary is torn (on a disk that grew,
    # the old backup is elsewhere and would not be found).
    backup_at = table.backup_entry_lba * table.sector_size
    with region.open(writable=True) as handle:
        for part in (True, False):
            for offset, data in writes:
                if (offset >= backup_at) == part:
                    handle.write(offset, data)
            handle.sync()
    if reread:
        tell_kernel(name, table)
