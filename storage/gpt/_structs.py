"""On-disk GPT structures (UEFI spec 2.10, section 5.3) with a symmetric parse/serialize API.

Pure functions over bytes: no I/O. Integers are little-endian; GUIDs use the mixed-endian layout of
``uuid.UUID.bytes_le``.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import Final

SIGNATURE: Final = b"EFI PART"
REVISION_1_0: Final = 0x00010000
HEADER_SIZE: Final = 92
ENTRY_SIZE: Final = 128
DEFAULT_ENTRY_COUNT: Final = 128
NAME_BYTES: Final = 72  # 36 UTF-16LE code units

# struct gpt_header {
#   char     signature[8];           /* "EFI PART" */
#   uint32_t revision;               /* 0x00010000 */
#   uint32_t header_size;            /* 92 */
#   uint32_t header_crc32;           /* over header_size bytes with this field zeroed */
#   uint32_t reserved;               /* must be zero */
#   uint64_t my_lba;                 /* LBA of this header */
#   uint64_t alternate_lba;          /* LBA of the other header */
#   uint64_t first_usable_lba;
#   uint64_t last_usable_lba;
#   guid_t   disk_guid;
#   uint64_t partition_entry_lba;    /* start of this copy's entry array */
#   uint32_t num_partition_entries;
#   uint32_t sizeof_partition_entry; /* 128 * 2^n */
#   uint32_t partition_entry_array_crc32;
# };
_HEADER: Final = struct.Struct("<8sIIII QQQQ 16s QIII")

# struct gpt_entry {
#   guid_t   partition_type_guid;    /* all zero = unused entry */
#   guid_t   unique_partition_guid;
#   uint64_t starting_lba;
#   uint64_t ending_lba;             /* inclusive */
#   uint64_t attributes;
#   uint16_t partition_name[36];     /* UTF-16LE, NUL padded */
# };
_ENTRY: Final = struct.Struct("<16s16sQQQ72s")

# Protective MBR: one partition record of type 0xEE covering the disk from LBA 1.
_MBR_RECORD: Final = struct.Struct("<B3sB3sII")
MBR_RECORD_OFFSET: Final = 446
MBR_BOOT_SIGNATURE: Final = b"\x55\xaa"
PROTECTIVE_TYPE: Final = 0xEE


@dataclass(frozen=True)
class RawHeader:
    """One GPT header as stored, before any check beyond the signature."""

    revision: int
    header_size: int
    header_crc32: int
    my_lba: int
    alternate_lba: int
    first_usable_lba: int
    last_usable_lba: int
    disk_guid: uuid.UUID
    entry_lba: int
    entry_count: int
    entry_size: int
    entries_crc32: int


@dataclass(frozen=True)
class RawEntry:
    """One used entry of the partition entry array; ``slot`` is its 0-based position."""

    slot: int
    type_guid: uuid.UUID
    unique_guid: uuid.UUID
    first_lba: int
    last_lba: int
    attributes: int
    name: str


def crc32(data: bytes) -> int:
    """The CRC32 GPT uses (ISO-HDLC, as zlib)."""
    return zlib.crc32(data) & 0xFFFFFFFF


def parse_header(sector: bytes) -> RawHeader | None:
    """Parse a header sector; ``None`` when the signature is missing. Checks nothing else."""
    if len(sector) < HEADER_SIZE or sector[:8] != SIGNATURE:
        return None
    f = _HEADER.unpack_from(sector)
    return RawHeader(
        revision=f[1],
        header_size=f[2],
        header_crc32=f[3],
        my_lba=f[5],
        alternate_lba=f[6],
        first_usable_lba=f[7],
        last_usable_lba=f[8],
        disk_guid=uuid.UUID(bytes_le=f[9]),
        entry_lba=f[10],
        entry_count=f[11],
        entry_size=f[12],
        entries_crc32=f[13],
    )


def header_crc_of(sector: bytes, header_size: int) -> int:
    """The CRC32 of ``header_size`` bytes of a header sector, with the CRC field zeroed."""
    data = bytearray(sector[:header_size])
    data[16:20] = b"\0\0\0\0"
    return crc32(bytes(data))


def serialize_header(header: RawHeader, sector_size: int) -> bytes:
    """A full header sector; the header CRC is computed here (``header.header_crc32`` is ignored)."""
    packed = bytearray(
        _HEADER.pack(
            SIGNATURE,
            header.revision,
            HEADER_SIZE,
            0,
            0,
            header.my_lba,
            header.alternate_lba,
            header.first_usable_lba,
            header.last_usable_lba,
            header.disk_guid.bytes_le,
            header.entry_lba,
            header.entry_count,
            header.entry_size,
            header.entries_crc32,
        )
    )
    struct.pack_into("<I", packed, 16, crc32(bytes(packed)))
    return bytes(packed) + bytes(sector_size - HEADER_SIZE)


def decode_name(raw: bytes) -> str:
    """A partition name: UTF-16LE up to the first NUL code unit."""
    units = len(raw) // 2
    end = units
    for i in range(units):
        if raw[2 * i : 2 * i + 2] == b"\0\0":
            end = i
            break
    return raw[: 2 * end].decode("utf-16-le", errors="replace")


def encode_name(name: str) -> bytes:
    """A partition name as 72 bytes of UTF-16LE; ``ValueError`` when it does not fit or contains NUL."""
    if "\0" in name:
        raise ValueError(f"partition name {name!r} contains a NUL character")
    raw = name.encode("utf-16-le")
    if len(raw) > NAME_BYTES:
        raise ValueError(f"partition name {name!r} is longer than 36 UTF-16 code units")
    return raw + bytes(NAME_BYTES - len(raw))


def parse_entries(array: bytes, entry_count: int, entry_size: int) -> list[RawEntry]:
    """The used entries (type GUID not all zero) of an entry array."""
    entries: list[RawEntry] = []
    for slot in range(entry_count):
        f = _ENTRY.unpack_from(array, slot * entry_size)
        if f[0] == bytes(16):
            continue
        entries.append(
            RawEntry(
                slot=slot,
                type_guid=uuid.UUID(bytes_le=f[0]),
                unique_guid=uuid.UUID(bytes_le=f[1]),
                first_lba=f[2],
                last_lba=f[3],
                attributes=f[4],
                name=decode_name(f[5]),
            )
        )
    return entries


def serialize_entries(entries: list[RawEntry], entry_count: int) -> bytes:
    """An entry array of ``entry_count`` 128-byte entries, unused slots zero."""
    array = bytearray(entry_count * ENTRY_SIZE)
    for e in entries:
        _ENTRY.pack_into(
            array,
            e.slot * ENTRY_SIZE,
            e.type_guid.bytes_le,
            e.unique_guid.bytes_le,
            e.first_lba,
            e.last_lba,
            e.attributes,
            encode_name(e.name),
        )
    return bytes(array)


def protective_mbr(total_sectors: int, sector_size: int) -> bytes:
    """LBA 0: a protective MBR whose single 0xEE record covers the disk (capped at 2^32-1 sectors)."""
    size = min(total_sectors - 1, 0xFFFFFFFF)
    sector = bytearray(sector_size)
    sector[MBR_RECORD_OFFSET : MBR_RECORD_OFFSET + 16] = _MBR_RECORD.pack(
        0, b"\x00\x02\x00", PROTECTIVE_TYPE, b"\xff\xff\xff", 1, size
    )
    sector[510:512] = MBR_BOOT_SIGNATURE
    return bytes(sector)


def entry_array_sectors(entry_count: int, entry_size: int, sector_size: int) -> int:
    """Sectors an entry array occupies."""
    return -(-(entry_count * entry_size) // sector_size)
