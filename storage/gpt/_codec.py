"""Encoding a PartitionTable to sectors and decoding it back, with CRC checks and backup fallback.

Pure apart from the ``read`` callable it is given, so it works on bytes, files and block devices alike.
"""

from __future__ import annotations

from collections.abc import Callable

from ._errors import CorruptTableError, NoPartitionTableError
from ._structs import (
    ENTRY_SIZE,
    HEADER_SIZE,
    REVISION_1_0,
    RawEntry,
    RawHeader,
    crc32,
    entry_array_sectors,
    header_crc_of,
    parse_entries,
    parse_header,
    protective_mbr,
    serialize_entries,
    serialize_header,
)
from ._table import Partition, PartitionTable

#: ``read(offset, length) -> bytes``; may return fewer bytes at the end of the device.
ReadAt = Callable[[int, int], bytes]

_MAX_ENTRY_ARRAY = 16 * 1024 * 1024


def encode_table(table: PartitionTable) -> list[tuple[int, bytes]]:
    """``(byte offset, data)`` writes that lay down the protective MBR, both headers and both arrays."""
    table.validate()
    ss = table.sector_size
    raw_entries = [
        RawEntry(
            slot=p.number - 1,
            type_guid=p.type_guid,
            unique_guid=p.unique_guid,
            first_lba=p.first_lba,
            last_lba=p.last_lba,
            attributes=p.attributes,
            name=p.name,
        )
        for p in table.partitions
    ]
    array = serialize_entries(raw_entries, table.entry_count)
    array += bytes(table.entry_sectors * ss - len(array))
    last = table.total_sectors - 1

    def header(my_lba: int, alternate: int, entry_lba: int) -> bytes:
        raw = RawHeader(
            revision=REVISION_1_0,
            header_size=HEADER_SIZE,
            header_crc32=0,
            my_lba=my_lba,
            alternate_lba=alternate,
            first_usable_lba=table.first_usable_lba,
            last_usable_lba=table.last_usable_lba,
            disk_guid=table.disk_guid,
            entry_lba=entry_lba,
            entry_count=table.entry_count,
            entry_size=ENTRY_SIZE,
            entries_crc32=crc32(array[: table.entry_count * ENTRY_SIZE]),
        )
        return serialize_header(raw, ss)

    return [
        (0, protective_mbr(table.total_sectors, ss)),
        (ss, header(1, last, 2)),
        (2 * ss, array),
        (table.backup_entry_lba * ss, array),
        (last * ss, header(last, 1, table.backup_entry_lba)),
    ]


def _load_copy(
    read: ReadAt, lba: int, sector_size: int, total_sectors: int, which: str
) -> tuple[RawHeader, list[RawEntry]] | str:
    """One header with its entry array, or a text saying what is wrong with it."""
    sector = read(lba * sector_size, sector_size)
    header = parse_header(sector)
    if header is None:
        return f"{which} header at LBA {lba}: no 'EFI PART' signature"
    where = f"{which} header at LBA {lba}"
    if not HEADER_SIZE <= header.header_size <= sector_size:
        return f"{where}: header size {header.header_size} is outside {HEADER_SIZE}..{sector_size}"
    if header_crc_of(sector, header.header_size) != header.header_crc32:
        return f"{where}: header CRC32 mismatch"
    if header.my_lba != lba:
        return f"{where}: records its own LBA as {header.my_lba}"
    if header.entry_size < ENTRY_SIZE or header.entry_size % ENTRY_SIZE:
        return f"{where}: entry size {header.entry_size} is not a multiple of {ENTRY_SIZE}"
    array_len = header.entry_count * header.entry_size
    if array_len > _MAX_ENTRY_ARRAY:
        return f"{where}: entry array of {array_len} bytes is implausibly large"
    if not header.first_usable_lba <= header.last_usable_lba < total_sectors:
        return (
            f"{where}: usable area {header.first_usable_lba}..{header.last_usable_lba} does not fit a "
            f"disk of {total_sectors} sectors"
        )
    array_sectors = entry_array_sectors(header.entry_count, header.entry_size, sector_size)
    if header.entry_lba + array_sectors > total_sectors:
        return f"{where}: entry array at LBA {header.entry_lba} runs past the end of the disk"
    array = read(header.entry_lba * sector_size, array_len)
    if len(array) < array_len:
        return f"{where}: entry array at LBA {header.entry_lba} is truncated"
    if crc32(array) != header.entries_crc32:
        return f"{where}: entry array CRC32 mismatch"
    entries = parse_entries(array, header.entry_count, header.entry_size)
    for e in entries:
        if not header.first_usable_lba <= e.first_lba <= e.last_lba <= header.last_usable_lba:
            return (
                f"{where}: entry {e.slot + 1} spans LBA {e.first_lba}..{e.last_lba}, outside the usable "
                f"area {header.first_usable_lba}..{header.last_usable_lba}"
            )
    return header, entries


def decode_table(read: ReadAt, disk_size: int, sector_size: int) -> PartitionTable:
    """Read a GPT, preferring the primary copy and falling back to the backup.

    Raises:
        NoPartitionTableError: neither header location has a GPT signature.
        CorruptTableError: both copies are damaged; the message says how.
    """
    total = disk_size // sector_size
    if total < 3:
        raise NoPartitionTableError(f"a device of {disk_size} bytes is too small to hold a GPT")
    primary = _load_copy(read, 1, sector_size, total, "primary")
    damage: list[str] = []
    if isinstance(primary, str):
        damage.append(primary)
        # The primary names the backup's location; if it is unreadable, the backup is in the last sector.
        backup = _load_copy(read, total - 1, sector_size, total, "backup")
        if isinstance(backup, str):
            damage.append(backup)
            if all("signature" in d for d in damage):
                raise NoPartitionTableError(f"no GPT found ({'; '.join(damage)})")
            raise CorruptTableError("both GPT copies are damaged: " + "; ".join(damage))
        chosen = backup
    else:
        chosen = primary
        header = primary[0]
        alternate = header.alternate_lba
        if alternate != total - 1:
            damage.append(f"backup header is at LBA {alternate}, not at the last LBA {total - 1}")
        if alternate < total:
            backup = _load_copy(read, alternate, sector_size, total, "backup")
            if isinstance(backup, str):
                damage.append(backup)
        else:
            damage.append(f"backup header LBA {alternate} is past the end of the disk ({total} sectors)")
    header, entries = chosen
    return PartitionTable(
        sector_size=sector_size,
        total_sectors=total,
        disk_guid=header.disk_guid,
        first_usable_lba=header.first_usable_lba,
        last_usable_lba=header.last_usable_lba,
        partitions=tuple(
            Partition(
                number=e.slot + 1,
                first_lba=e.first_lba,
                last_lba=e.last_lba,
                name=e.name,
                type_guid=e.type_guid,
                unique_guid=e.unique_guid,
                attributes=e.attributes,
            )
            for e in entries
        ),
        entry_count=header.entry_count,
        damage=tuple(damage),
    )
