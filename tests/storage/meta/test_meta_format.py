"""The Talos ADV block, byte for byte (pure functions, no I/O)."""

from __future__ import annotations

import contextlib
import hashlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from volumed.storage.meta import (
    BLOCK_LENGTH,
    DATA_LENGTH,
    InvalidBlockError,
    MetaValueError,
    decode_block,
    encode_block,
)


def handmade_block(entries: list[tuple[int, bytes]]) -> bytes:
    """A block built straight from go-adv's layout comment, independently of encode_block."""
    block = bytearray(BLOCK_LENGTH)
    block[0:4] = bytes.fromhex("5a4b3c2d")
    position = 4
    for tag, value in entries:
        block[position : position + 8] = struct.pack(">II", tag, len(value))
        block[position + 8 : position + 8 + len(value)] = value
        position += 8 + len(value)
    block[-4:] = bytes.fromhex("a5b4c3d2")
    block[-36:-4] = hashlib.sha256(bytes(block)).digest()
    return bytes(block)


def test_constants() -> None:
    assert BLOCK_LENGTH == 262144
    assert DATA_LENGTH == 262104


def test_encode_matches_the_layout() -> None:
    tags = {15: b"12345678-1234-5678-1234-567812345678", 9: b"null"}
    assert encode_block(tags) == handmade_block([(9, b"null"), (15, tags[15])])


def test_empty_block() -> None:
    block = encode_block({})
    assert block == handmade_block([])
    assert decode_block(block) == {}
    assert block[4:12] == bytes(8)


def test_round_trip() -> None:
    tags = {1: b"", 6: b"x" * 1000, 255: bytes(range(256))}
    assert decode_block(encode_block(tags)) == tags


def test_decode_reads_entries_in_any_order_and_later_duplicates_win() -> None:
    block = handmade_block([(15, b"a"), (9, b"b"), (15, b"c")])
    assert decode_block(block) == {15: b"c", 9: b"b"}


def test_a_full_data_area_needs_no_end_marker() -> None:
    tags = {7: b"v" * (DATA_LENGTH - 8)}
    block = encode_block(tags)
    assert decode_block(block) == tags


def test_overflow() -> None:
    with pytest.raises(MetaValueError) as raised:
        encode_block({7: b"v" * (DATA_LENGTH - 7)})
    assert str(raised.value) == "META overflow: entries need 262105 bytes, the data area holds 262104"


@pytest.mark.parametrize("tag", [0, 256, -1])
def test_tag_range(tag: int) -> None:
    with pytest.raises(MetaValueError) as raised:
        encode_block({tag: b""})
    assert str(raised.value) == f"tag {tag} is out of range (1 to 255)"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:-1], "unexpected length 262143, expecting 262144"),
        (lambda b: b"\x00" + b[1:], "unexpected magic 0x004b3c2d, expecting 0x5a4b3c2d"),
        (lambda b: b[:-1] + b"\x00", "unexpected magic 0xa5b4c300, expecting 0xa5b4c3d2"),
        (lambda b: b[:100] + b"\x01" + b[101:], "checksum mismatch"),
        (lambda b: b[:-36] + bytes(32) + b[-4:], "checksum mismatch"),
    ],
)
def test_invalid_blocks(mutate: object, message: str) -> None:
    block = encode_block({9: b"null"})
    with pytest.raises(InvalidBlockError) as raised:
        decode_block(mutate(block))  # type: ignore[operator]
    assert str(raised.value) == message


def test_value_past_the_end() -> None:
    block = bytearray(handmade_block([]))
    block[4:12] = struct.pack(">II", 9, DATA_LENGTH)
    block[-36:-4] = bytes(32)
    block[-36:-4] = hashlib.sha256(bytes(block)).digest()
    with pytest.raises(InvalidBlockError) as raised:
        decode_block(bytes(block))
    assert str(raised.value) == f"value goes beyond the end of the block: tag 9, size {DATA_LENGTH}"


TAGS = st.dictionaries(st.integers(1, 255), st.binary(max_size=300), max_size=20)


@given(TAGS)
def test_property_round_trip(tags: dict[int, bytes]) -> None:
    assert decode_block(encode_block(tags)) == tags


@given(st.binary(min_size=0, max_size=600), st.integers(0, BLOCK_LENGTH - 1))
def test_property_random_bytes_never_crash(noise: bytes, offset: int) -> None:
    block = bytearray(encode_block({9: b"null"}))
    block[offset : offset + len(noise)] = noise
    block = block[:BLOCK_LENGTH]
    with contextlib.suppress(InvalidBlockError):
        decode_block(bytes(block))


@given(
    st.lists(st.tuples(st.integers(1, 2**32 - 1), st.binary(max_size=64)), max_size=12),
    st.integers(0, 2**32 - 1),
)
def test_property_random_entries_with_valid_checksum(
    entries: list[tuple[int, bytes]], bogus_size: int
) -> None:
    """Well-formed outer block, arbitrary entries (including lying sizes): tags or a clear error."""
    block = bytearray(handmade_block(entries))
    position = 4 + sum(8 + len(value) for _, value in entries)
    if position + 8 <= BLOCK_LENGTH - 36:
        block[position : position + 8] = struct.pack(">II", 200, bogus_size)
        block[-36:-4] = bytes(32)
        block[-36:-4] = hashlib.sha256(bytes(block)).digest()
    lying = position + 8 <= BLOCK_LENGTH - 36 and bogus_size > BLOCK_LENGTH - 36 - position - 8
    if lying:
        with pytest.raises(InvalidBlockError, match="beyond the end"):
            decode_block(bytes(block))
    else:
        tags = decode_block(bytes(block))
        assert all(isinstance(value, bytes) for value in tags.values())


def test_tags_are_named_and_parsed_by_name_or_number() -> None:
    from volumed.storage.meta._tags import parse_tag, tag_name

    assert tag_name(9) == "STATE_ENCRYPTION_CONFIG"
    assert tag_name(0xF0) == "VOLUMED_MKFS_PENDING"  # volumed's own, shown by `volumed meta dump`
    assert tag_name(0x40) == ""
    assert parse_tag("volumed_mkfs_pending") == parse_tag("0xf0") == parse_tag("240") == 0xF0
