"""Hand-editing the GPT of an image file, independently of volumed's GPT writer: raw offsets of the UEFI
layout, CRCs recomputed with zlib. Used to craft tables volumed's own writer refuses to make (overlapping
entries, duplicate GUIDs, a usable area over the entry array)."""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable
    from pathlib import Path

#: Offsets inside a header (UEFI 2.10, table 5.5).
_HEADER_CRC = 16
_MY_LBA = 24
_FIRST_USABLE = 40
_LAST_USABLE = 48
_ENTRY_LBA = 72
_ENTRY_COUNT = 80
_ENTRY_SIZE = 84
_ENTRIES_CRC = 88
_HEADER_SIZE = 12


def _u64(buf: bytes | bytearray, offset: int) -> int:
    return int(struct.unpack_from("<Q", buf, offset)[0])


def _u32(buf: bytes | bytearray, offset: int) -> int:
    return int(struct.unpack_from("<I", buf, offset)[0])


def set_entry(
    array: bytearray,
    number: int,
    *,
    first: int | None = None,
    last: int | None = None,
    name: str | None = None,
    unique: uuid.UUID | None = None,
) -> None:
    """Change fields of entry ``number`` (1-based) of an entry array of 128-byte entries."""
    base = (number - 1) * 128
    if unique is not None:
        array[base + 16 : base + 32] = unique.bytes_le
    if first is not None:
        struct.pack_into("<Q", array, base + 32, first)
    if last is not None:
        struct.pack_into("<Q", array, base + 40, last)
    if name is not None:
        raw = name.encode("utf-16-le")
        array[base + 56 : base + 128] = raw + bytes(72 - len(raw))


def entry(array: bytes | bytearray, number: int) -> tuple[int, int]:
    """``(first_lba, last_lba)`` of entry ``number`` (1-based)."""
    base = (number - 1) * 128
    return _u64(array, base + 32), _u64(array, base + 40)


def edit_gpt(
    path: Path,
    edit_entries: Callable[[bytearray], None] | None = None,
    *,
    edit_header: Callable[[bytearray], None] | None = None,
    copies: tuple[str, ...] = ("primary", "backup"),
    sector_size: int = 512,
) -> None:
    """Apply ``edit_entries`` to the entry array and ``edit_header`` to the header of each named copy, then
    recompute that copy's entry-array CRC and header CRC."""
    size = path.stat().st_size
    lbas = {"primary": 1, "backup": size // sector_size - 1}
    with path.open("r+b") as disk:
        for which in copies:
            disk.seek(lbas[which] * sector_size)
            header = bytearray(disk.read(sector_size))
            assert header[:8] == b"EFI PART", f"no {which} header"
            entry_lba = _u64(header, _ENTRY_LBA)
            length = _u32(header, _ENTRY_COUNT) * _u32(header, _ENTRY_SIZE)
            disk.seek(entry_lba * sector_size)
            array = bytearray(disk.read(length))
            if edit_entries is not None:
                edit_entries(array)
            if edit_header is not None:
                edit_header(header)
            struct.pack_into("<I", header, _ENTRIES_CRC, zlib.crc32(array))
            struct.pack_into("<I", header, _HEADER_CRC, 0)
            header_size = _u32(header, _HEADER_SIZE)
            struct.pack_into("<I", header, _HEADER_CRC, zlib.crc32(bytes(header[:header_size])))
            disk.seek(entry_lba * sector_size)
            disk.write(array)
            disk.seek(lbas[which] * sector_size)
            disk.write(header)


def set_first_usable(header: bytearray, lba: int) -> None:
    struct.pack_into("<Q", header, _FIRST_USABLE, lba)


def read_entries(path: Path, sector_size: int = 512) -> bytes:
    """The primary entry array."""
    with path.open("rb") as disk:
        disk.seek(sector_size)
        header = disk.read(sector_size)
        disk.seek(_u64(header, _ENTRY_LBA) * sector_size)
        return disk.read(_u32(header, _ENTRY_COUNT) * _u32(header, _ENTRY_SIZE))
