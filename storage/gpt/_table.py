"""The partition table as a frozen value, and the pure layout operations on it (add, remove, grow)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field, replace
from typing import Final, final

from ._errors import LayoutError
from ._guids import LINUX_FILESYSTEM_DATA
from ._structs import DEFAULT_ENTRY_COUNT, ENTRY_SIZE, encode_name, entry_array_sectors

MIB: Final = 1024 * 1024
#: Partitions start on 1 MiB boundaries, as sgdisk, sfdisk and Talos place them.
DEFAULT_ALIGNMENT: Final = MIB
SECTOR_SIZES: Final = (512, 4096)


@final
@dataclass(frozen=True)
class Partition:
    """One partition. ``number`` is its 1-based slot in the entry array (Linux's partition number)."""

    number: int
    first_lba: int
    last_lba: int
    name: str = ""
    type_guid: uuid.UUID = LINUX_FILESYSTEM_DATA
    unique_guid: uuid.UUID = field(default_factory=uuid.uuid4)
    attributes: int = 0

    @property
    def label(self) -> str:
        """The partition name, which Talos (and udev's PARTLABEL) use as the label."""
        return self.name

    @property
    def sectors(self) -> int:
        """Length in sectors."""
        return self.last_lba - self.first_lba + 1

    def offset(self, sector_size: int) -> int:
        """Byte offset of the partition on the disk."""
        return self.first_lba * sector_size

    def size(self, sector_size: int) -> int:
        """Size of the partition in bytes."""
        return self.sectors * sector_size


@final
@dataclass(frozen=True)
class PartitionTable:
    """A GPT: geometry, disk GUID and partitions (sorted by number).

    ``total_sectors`` is the disk size in logical sectors; the backup header sits in its last sector.
    ``damage`` lists problems found when the table was read (e.g. a bad primary CRC); writing the table
    back writes both copies and so repairs them, unless ``read_only`` says why it must not be written
    (a copy with right CRCs that describes another disk was passed over: writing would replace it).
    """

    sector_size: int
    total_sectors: int
    disk_guid: uuid.UUID
    first_usable_lba: int
    last_usable_lba: int
    partitions: tuple[Partition, ...] = ()
    entry_count: int = DEFAULT_ENTRY_COUNT
    damage: tuple[str, ...] = ()
    read_only: str = ""

    @property
    def disk_size(self) -> int:
        """Disk size in bytes."""
        return self.total_sectors * self.sector_size

    @property
    def entry_sectors(self) -> int:
        """Sectors one copy of the entry array takes."""
        return entry_array_sectors(self.entry_count, ENTRY_SIZE, self.sector_size)

    @property
    def backup_entry_lba(self) -> int:
        """Start of the backup entry array (just before the backup header)."""
        return self.total_sectors - 1 - self.entry_sectors

    def find(self, label: str) -> Partition | None:
        """The first partition named ``label``, if any (``named`` tells whether there are more)."""
        return next((p for p in self.partitions if p.name == label), None)

    def named(self, label: str) -> tuple[Partition, ...]:
        """Every partition named ``label``, by number."""
        return tuple(p for p in self.partitions if p.name == label)

    def partition(self, number: int) -> Partition:
        """The partition with this number; ``LayoutError`` if there is none."""
        for p in self.partitions:
            if p.number == number:
                return p
        raise LayoutError(f"no partition number {number}")

    def free_ranges(self) -> list[tuple[int, int]]:
        """Unallocated ``(first_lba, last_lba)`` ranges inside the usable area, in disk order."""
        ranges: list[tuple[int, int]] = []
        cursor = self.first_usable_lba
        for p in sorted(self.partitions, key=lambda p: p.first_lba):
            if p.first_lba > cursor:
                ranges.append((cursor, p.first_lba - 1))
            cursor = max(cursor, p.last_lba + 1)
        if cursor <= self.last_usable_lba:
            ranges.append((cursor, self.last_usable_lba))
        return ranges

    def validate(self) -> None:
        """Raise ``LayoutError`` if the partitions overlap, leave the usable area, or have bad fields."""
        if self.sector_size not in SECTOR_SIZES:
            raise LayoutError(f"sector size {self.sector_size} is not one of {SECTOR_SIZES}")
        seen: set[int] = set()
        for p in self.partitions:
            if not 1 <= p.number <= self.entry_count:
                raise LayoutError(f"partition number {p.number} is outside 1..{self.entry_count}")
            if p.number in seen:
                raise LayoutError(f"partition number {p.number} is used twice")
            seen.add(p.number)
            if not self.first_usable_lba <= p.first_lba <= p.last_lba <= self.last_usable_lba:
                raise LayoutError(
                    f"partition {p.number} ({p.name!r}) spans LBA {p.first_lba}..{p.last_lba}, outside the "
                    f"usable area {self.first_usable_lba}..{self.last_usable_lba}"
                )
            if p.type_guid.int == 0:
                raise LayoutError(f"partition {p.number} has the all-zero (unused) type GUID")
            try:
                encode_name(p.name)
            except ValueError as exc:
                raise LayoutError(str(exc)) from None
        ordered = sorted(self.partitions, key=lambda p: p.first_lba)
        for a, b in itertools.pairwise(ordered):
            if b.first_lba <= a.last_lba:
                raise LayoutError(f"partitions {a.number} ({a.name!r}) and {b.number} ({b.name!r}) overlap")
        guids: dict[uuid.UUID, Partition] = {}
        for p in self.partitions:
            other = guids.setdefault(p.unique_guid, p)
            if other is not p:
                raise LayoutError(
                    f"partitions {other.number} and {p.number} have the same unique GUID {p.unique_guid}"
                )

    def add_partition(
        self,
        *,
        size: int | None,
        name: str,
        type_guid: uuid.UUID = LINUX_FILESYSTEM_DATA,
        unique_guid: uuid.UUID | None = None,
        number: int | None = None,
        alignment: int = DEFAULT_ALIGNMENT,
    ) -> tuple[PartitionTable, Partition]:
        """A new table with one more partition, and that partition.

        ``size`` in bytes (rounded up to whole sectors) goes into the first aligned gap that fits;
        ``None`` takes all of the largest free gap. The start is aligned to ``alignment`` bytes.
        """
        ss = self.sector_size
        if alignment <= 0 or alignment % ss:
            raise LayoutError(f"alignment {alignment} is not a positive multiple of the sector size {ss}")
        if size is not None and size <= 0:
            raise LayoutError(f"partition size must be positive, got {size}")
        if number is None:
            used = {p.number for p in self.partitions}
            number = next((n for n in range(1, self.entry_count + 1) if n not in used), None)
            if number is None:
                raise LayoutError(f"all {self.entry_count} partition entries are in use")
        align = alignment // ss
        want = None if size is None else -(-size // ss)
        candidates: list[tuple[int, int]] = []
        for first, last in self.free_ranges():
            start = -(-first // align) * align
            if start > last:
                continue
            available = last - start + 1
            if want is None:
                candidates.append((start, _align_end(start, last, align)))
            elif available >= want:
                candidates.append((start, start + want - 1))
                break
        if not candidates:
            what = "any" if want is None else f"{want * ss} bytes of"
            raise LayoutError(f"no room for {what} aligned free space for partition {name!r}")
        start, end = max(candidates, key=lambda c: c[1] - c[0]) if want is None else candidates[0]
        part = Partition(
            number=number,
            first_lba=start,
            last_lba=end,
            name=name,
            type_guid=type_guid,
            unique_guid=unique_guid or uuid.uuid4(),
        )
        table = replace(self, partitions=tuple(sorted((*self.partitions, part), key=lambda p: p.number)))
        table.validate()
        return table, part

    def remove_partition(self, number: int) -> PartitionTable:
        """A new table without partition ``number``."""
        self.partition(number)
        return replace(self, partitions=tuple(p for p in self.partitions if p.number != number))

    def grow_last_partition(self, *, alignment: int = DEFAULT_ALIGNMENT) -> tuple[PartitionTable, Partition]:
        """A new table whose last partition (by position) extends to the end of the usable area.

        The new end is rounded down so the partition ends on an ``alignment`` boundary where it can.
        """
        if not self.partitions:
            raise LayoutError("the table has no partition to grow")
        last = max(self.partitions, key=lambda p: p.last_lba)
        align = max(1, alignment // self.sector_size)
        # Never shrink: a partition that already reaches past the aligned end keeps its end (idempotent).
        end = max(_align_end(last.first_lba, self.last_usable_lba, align), last.last_lba)
        grown = replace(last, last_lba=end)
        parts = tuple(grown if p.number == last.number else p for p in self.partitions)
        return replace(self, partitions=parts), grown

    def resized(self, disk_size: int) -> PartitionTable:
        """The table for the disk grown (or shrunk) to ``disk_size`` bytes: the backup moves to the end."""
        if disk_size % self.sector_size:
            raise LayoutError(
                f"disk size {disk_size} is not a multiple of the sector size {self.sector_size}"
            )
        total = disk_size // self.sector_size
        table = replace(self, total_sectors=total, last_usable_lba=total - 2 - self.entry_sectors)
        table.validate()
        return table


def _align_end(start: int, last: int, align: int) -> int:
    """``last`` rounded down to end just before an alignment boundary, if that keeps the range non-empty."""
    end = (last + 1) // align * align - 1
    return end if end >= start else last


def new_table(
    disk_size: int, *, sector_size: int = 512, disk_guid: uuid.UUID | None = None, entry_count: int = 128
) -> PartitionTable:
    """An empty GPT for a disk of ``disk_size`` bytes."""
    if sector_size not in SECTOR_SIZES:
        raise LayoutError(f"sector size {sector_size} is not one of {SECTOR_SIZES}")
    if not 1 <= entry_count <= 16384:
        raise LayoutError(f"entry count {entry_count} is outside 1..16384")
    if disk_size % sector_size:
        raise LayoutError(f"disk size {disk_size} is not a multiple of the sector size {sector_size}")
    total = disk_size // sector_size
    entry_sectors = entry_array_sectors(entry_count, ENTRY_SIZE, sector_size)
    first_usable = 2 + entry_sectors
    last_usable = total - 2 - entry_sectors
    if last_usable < first_usable:
        raise LayoutError(f"a disk of {disk_size} bytes is too small for a GPT")
    return PartitionTable(
        sector_size=sector_size,
        total_sectors=total,
        disk_guid=disk_guid or uuid.uuid4(),
        first_usable_lba=first_usable,
        last_usable_lba=last_usable,
        entry_count=entry_count,
    )
