"""The Talos ADV block (siderolabs/go-adv ``adv/talos``), as pure functions on bytes.

Layout of one copy (all integers big-endian)::

     0x0000   4 bytes        magic1 0x5a4b3c2d
     0x0004   4 bytes        tag      \\
     0x0008   4 bytes        size      > repeated; tag 0 (or fewer than 8 bytes left) ends the list
     0x000c   size bytes     value    /
    -0x0024   32 bytes       SHA-256 of the whole block with this field zeroed
    -0x0004   4 bytes        magic2 0xa5b4c3d2

The block is 256 KiB and written twice (offsets 0 and 256 KiB of the 1 MiB META partition).
"""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING, Final

from ._errors import MetaValueError

if TYPE_CHECKING:
    from collections.abc import Mapping

BLOCK_LENGTH: Final = 256 * 1024
COPIES: Final = 2
ADV_SIZE: Final = COPIES * BLOCK_LENGTH
PARTITION_SIZE: Final = 1024 * 1024
DATA_LENGTH: Final = BLOCK_LENGTH - 40
ENTRY_OVERHEAD: Final = 8
MAGIC1: Final = 0x5A4B3C2D
MAGIC2: Final = 0xA5B4C3D2
END_TAG: Final = 0
META_PARTITION_LABEL: Final = "META"
MAX_TAG: Final = 0xFF  # Talos' API takes uint8 tags, though the format has room for uint32
_CHECKSUM_START: Final = BLOCK_LENGTH - 36
_CHECKSUM_END: Final = BLOCK_LENGTH - 4
_U32: Final = struct.Struct(">I")
_ENTRY: Final = struct.Struct(">II")


class InvalidBlockError(ValueError):
    """One ADV copy is not valid (wrong length, magic or checksum, or an entry past the end)."""


def used_bytes(tags: Mapping[int, bytes]) -> int:
    """The space entries take in the data area (8 bytes of header each, plus the value)."""
    return sum(ENTRY_OVERHEAD + len(value) for value in tags.values())


def encode_block(tags: Mapping[int, bytes]) -> bytes:
    """One ADV copy holding ``tags``, entries in ascending tag order.

    Raises:
        MetaValueError: a tag is outside 1..255, or the entries do not fit in the data area.
    """
    for tag in tags:
        if not 1 <= tag <= MAX_TAG:
            raise MetaValueError(f"tag {tag} is out of range (1 to {MAX_TAG})")
    used = used_bytes(tags)
    if used > DATA_LENGTH:
        raise MetaValueError(f"META overflow: entries need {used} bytes, the data area holds {DATA_LENGTH}")
    block = bytearray(BLOCK_LENGTH)
    _U32.pack_into(block, 0, MAGIC1)
    offset = 4
    for tag in sorted(tags):
        value = tags[tag]
        _ENTRY.pack_into(block, offset, tag, len(value))
        block[offset + ENTRY_OVERHEAD : offset + ENTRY_OVERHEAD + len(value)] = value
        offset += ENTRY_OVERHEAD + len(value)
    _U32.pack_into(block, BLOCK_LENGTH - 4, MAGIC2)
    block[_CHECKSUM_START:_CHECKSUM_END] = hashlib.sha256(block).digest()
    return bytes(block)


def decode_block(block: bytes) -> dict[int, bytes]:
    """The tags of one ADV copy (a later duplicate of a tag wins, as in Talos).

    Raises:
        InvalidBlockError: naming what is wrong with the copy.
    """
    if len(block) != BLOCK_LENGTH:
        raise InvalidBlockError(f"unexpected length {len(block)}, expecting {BLOCK_LENGTH}")
    (magic1,) = _U32.unpack_from(block, 0)
    if magic1 != MAGIC1:
        raise InvalidBlockError(f"unexpected magic {magic1:#010x}, expecting {MAGIC1:#010x}")
    (magic2,) = _U32.unpack_from(block, BLOCK_LENGTH - 4)
    if magic2 != MAGIC2:
        raise InvalidBlockError(f"unexpected magic {magic2:#010x}, expecting {MAGIC2:#010x}")
    stored = block[_CHECKSUM_START:_CHECKSUM_END]
    zeroed = block[:_CHECKSUM_START] + bytes(32) + block[_CHECKSUM_END:]
    if hashlib.sha256(zeroed).digest() != stored:
        raise InvalidBlockError("checksum mismatch")
    tags: dict[int, bytes] = {}
    offset, end = 4, _CHECKSUM_START
    while end - offset >= ENTRY_OVERHEAD:
        tag, size = _ENTRY.unpack_from(block, offset)
        if tag == END_TAG:
            break
        if end - offset < size + ENTRY_OVERHEAD:
            raise InvalidBlockError(f"value goes beyond the end of the block: tag {tag}, size {size}")
        tags[tag] = bytes(block[offset + ENTRY_OVERHEAD : offset + ENTRY_OVERHEAD + size])
        offset += ENTRY_OVERHEAD + size
    return tags
