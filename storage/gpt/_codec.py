"""Encoding a PartitionTable to sectors and decoding it back, with CRC checks and backup fallback.

Pure apart from the ``read`` callable it is given, so it works on bytes, files and block devices alike.
"""

from __future__ import annotations

from collections.abc import Callable

from ._checks import Reserved, reserved_areas, summary, table_problems
from ._errors import CorruptTableError, InvalidTableError, NoPartitionTableError, ReadOnlyTableError
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

#: One copy of the table as read: its header and its used entries.
_Copy = tuple[RawHeader, list[RawEntry]]


class _OtherDisk(str):
    """Why a copy is not used although its CRCs are right: it describes another disk. A table read past
    such a copy is not written (``PartitionTable.read_only``)."""

    __slots__ = ()


def encode_table(table: PartitionTable) -> list[tuple[int, bytes]]:
    """``(byte offset, data)`` writes that lay down the protective MBR, both headers and both arrays."""
    if table.read_only:
        raise ReadOnlyTableError(f"the GPT is not written: {table.read_only}; repair it first (sgdisk -e)")
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


def _load_copy(read: ReadAt, lba: int, sector_size: int, total_sectors: int, which: str) -> _Copy | str:
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
    if lba == 1 and not 1 < header.alternate_lba < total_sectors:
        # The disk is not the one the header describes (sgdisk: "disk size is smaller than the main header
        # indicates"); the backup in the last sector is read instead.
        return _OtherDisk(
            f"{where}: records its backup at LBA {header.alternate_lba}, past the end of the disk "
            f"({total_sectors} sectors)"
            if header.alternate_lba >= total_sectors
            else f"{where}: records its backup at LBA {header.alternate_lba}"
        )
    if lba != 1 and header.alternate_lba != 1:
        return f"{where}: records its primary at LBA {header.alternate_lba}, not 1"
    if header.entry_count == 0:
        return f"{where}: entry count 0 (a GPT has at least one partition entry)"
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
    return header, parse_entries(array, header.entry_count, header.entry_size)


def _problems(copy: _Copy, other: _Copy | str, sector_size: int, which: str, other_which: str) -> list[str]:
    """Why a copy that read well describes an invalid table (see ``_checks``), with both copies' areas
    and the protective MBR as the sectors no partition may cover."""
    header, entries = copy
    reserved: list[Reserved] = [(0, 0, "protective MBR"), *reserved_areas(header, sector_size, which)]
    if not isinstance(other, str):
        reserved += reserved_areas(other[0], sector_size, other_which)
    elif header.alternate_lba != header.my_lba:
        reserved.append((header.alternate_lba, header.alternate_lba, f"{other_which} GPT header"))
    return table_problems(header, entries, reserved)


def decode_table(read: ReadAt, disk_size: int, sector_size: int) -> PartitionTable:
    """Read a GPT, preferring the primary copy and falling back to the backup.

    A copy whose CRCs are right but whose layout is invalid (``_checks``) is not fallen back from: two
    readable copies of which one says something impossible leave no copy to trust, so the table is refused.

    Raises:
        NoPartitionTableError: neither header location has a GPT signature.
        InvalidTableError: a copy that reads describes an invalid layout; the message names the partitions.
        CorruptTableError: both copies are damaged; the message says how.
    """
    total = disk_size // sector_size
    if total < 3:
        raise NoPartitionTableError(f"a device of {disk_size} bytes is too small to hold a GPT")
    primary = _load_copy(read, 1, sector_size, total, "primary")
    damage: list[str] = []
    backup: _Copy | str
    if isinstance(primary, str):
        damage.append(primary)
        # The primary names the backup's location; if it is unreadable, the backup is in the last sector.
        backup = _load_copy(read, total - 1, sector_size, total, "backup")
    else:
        alternate = primary[0].alternate_lba
        if alternate != total - 1:
            damage.append(f"backup header is at LBA {alternate}, not at the last LBA {total - 1}")
        backup = _load_copy(read, alternate, sector_size, total, "backup")  # 1 < alternate < total
    if isinstance(backup, str):
        damage.append(backup)
    _refuse_invalid(primary, backup, sector_size)
    if isinstance(primary, str):
        if isinstance(backup, str):
            if all("signature" in d for d in damage):
                raise NoPartitionTableError(f"no GPT found ({'; '.join(damage)})")
            raise CorruptTableError("both GPT copies are damaged: " + "; ".join(damage))
        chosen = backup
    else:
        chosen = primary
    header, entries = chosen
    return PartitionTable(
        sector_size=sector_size,
        total_sectors=total,
        disk_guid=header.disk_guid,
        first_usable_lba=header.first_usable_lba,
        last_usable_lba=header.last_usable_lba,
        partitions=_partitions(entries),
        entry_count=header.entry_count,
        damage=tuple(damage),
        read_only="; ".join(d for d in damage if isinstance(d, _OtherDisk)),
    )


def _refuse_invalid(primary: _Copy | str, backup: _Copy | str, sector_size: int) -> None:
    """Raise ``InvalidTableError`` when either copy that read well describes an invalid layout."""
    found: dict[str, list[str]] = {}
    if not isinstance(primary, str):
        found["primary"] = _problems(primary, backup, sector_size, "primary", "backup")
    if not isinstance(backup, str):
        found["backup"] = _problems(backup, primary, sector_size, "backup", "primary")
    bad = {which: problems for which, problems in found.items() if problems}
    if not bad:
        return
    texts = {summary(problems) for problems in bad.values()}
    if len(texts) == 1 and len(bad) == len(found):
        message = texts.pop()  # both copies say the same: say it once
    else:
        message = "; ".join(f"{which} GPT copy: {summary(problems)}" for which, problems in bad.items())
    source = primary if not isinstance(primary, str) else backup
    assert not isinstance(source, str)
    raise InvalidTableError(message, _partitions(source[1]))


def _partitions(entries: list[RawEntry]) -> tuple[Partition, ...]:
    return tuple(
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
    )
