"""What makes a GPT whose CRCs are right still invalid (UEFI 2.10 section 5.3; what `sgdisk -v` reports).

Pure: works on a parsed header and its entries. A partition that ends before it starts, leaves the usable
area, overlaps another or the table's own sectors, or shares its unique GUID with another: opening or
writing any partition of such a table could destroy another's bytes, so the table is not used at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ._structs import entry_array_sectors

if TYPE_CHECKING:
    import uuid
    from collections.abc import Sequence

    from ._structs import RawEntry, RawHeader

#: Problems listed in one message; a table with thousands of bad entries is not spelled out in full.
MAX_LISTED: Final = 8

#: ``(first_lba, last_lba, what)``: sectors the table itself occupies.
Reserved = tuple[int, int, str]


def describe(entry: RawEntry) -> str:
    """``2 (STATE, LBA 4096..208895)``: how a partition is named in messages."""
    return f"{entry.slot + 1} ({entry.name or 'unnamed'}, LBA {entry.first_lba}..{entry.last_lba})"


def reserved_areas(header: RawHeader, sector_size: int, which: str) -> list[Reserved]:
    """The sectors one copy occupies: its header and its entry array."""
    array = entry_array_sectors(header.entry_count, header.entry_size, sector_size)
    return [
        (header.my_lba, header.my_lba, f"{which} GPT header"),
        (header.entry_lba, header.entry_lba + array - 1, f"{which} entry array"),
    ]


def table_problems(header: RawHeader, entries: Sequence[RawEntry], reserved: Sequence[Reserved]) -> list[str]:
    """Every reason the table is invalid, in a stable order; empty when it is valid.

    ``reserved`` are the areas of both copies (and the protective MBR) that no partition may cover.
    """
    problems: list[str] = []
    first, last = header.first_usable_lba, header.last_usable_lba
    for start, end, what in reserved:
        if start <= last and first <= end:
            problems.append(f"the usable area LBA {first}..{last} overlaps the {what} (LBA {start}..{end})")
    for e in entries:
        if e.first_lba > e.last_lba:
            problems.append(f"GPT partition {describe(e)} ends before it starts")
        elif not first <= e.first_lba <= e.last_lba <= last:
            problems.append(f"GPT partition {describe(e)} is outside the usable area LBA {first}..{last}")
        else:
            for start, end, what in reserved:
                if e.first_lba <= end and start <= e.last_lba:
                    problems.append(f"GPT partition {describe(e)} overlaps the {what} (LBA {start}..{end})")
    problems.extend(_overlaps(entries))
    by_guid: dict[uuid.UUID, RawEntry] = {}
    for e in entries:
        other = by_guid.setdefault(e.unique_guid, e)
        if other is not e:
            same = f"have the same unique GUID {e.unique_guid}"
            problems.append(f"GPT partitions {describe(other)} and {describe(e)} {same}")
    return problems


def _overlaps(entries: Sequence[RawEntry]) -> list[str]:
    """Each partition that starts inside an earlier one (by start), named with the one it is inside."""
    found: list[str] = []
    ordered = sorted((e for e in entries if e.first_lba <= e.last_lba), key=lambda e: (e.first_lba, e.slot))
    reach: RawEntry | None = None  # the partition reaching furthest so far
    for e in ordered:
        if reach is not None and e.first_lba <= reach.last_lba:
            found.append(f"GPT partitions {describe(e)} and {describe(reach)} overlap")
        if reach is None or e.last_lba > reach.last_lba:
            reach = e
    return found


def summary(problems: Sequence[str]) -> str:
    """The problems as one message, the first ``MAX_LISTED`` of them."""
    listed = "; ".join(problems[:MAX_LISTED])
    more = len(problems) - MAX_LISTED
    return listed + (f"; and {more} more problems" if more > 0 else "")
