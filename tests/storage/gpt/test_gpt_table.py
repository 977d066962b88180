"""GPT: geometry, layout operations, encode/decode round trips and damage handling (pure, in memory)."""

from __future__ import annotations

import struct
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from volumed.storage.gpt import (
    LINUX_FILESYSTEM_DATA,
    LINUX_SWAP,
    CorruptTableError,
    LayoutError,
    NoPartitionTableError,
    PartitionTable,
    decode_table,
    encode_table,
    new_table,
)

MIB = 1024 * 1024


def image_of(table: PartitionTable) -> bytearray:
    disk = bytearray(table.disk_size)
    for offset, data in encode_table(table):
        disk[offset : offset + len(data)] = data
    return disk


def reader(disk: bytearray):  # type: ignore[no-untyped-def]
    return lambda offset, length: bytes(disk[offset : offset + length])


def decode(disk: bytearray, sector_size: int = 512) -> PartitionTable:
    return decode_table(reader(disk), len(disk), sector_size)


@pytest.mark.parametrize(("sector_size", "first", "last_from_end"), [(512, 34, 34), (4096, 6, 6)])
def test_new_table_geometry(sector_size: int, first: int, last_from_end: int) -> None:
    table = new_table(64 * MIB, sector_size=sector_size)
    total = 64 * MIB // sector_size
    assert table.total_sectors == total
    assert table.first_usable_lba == first
    assert table.last_usable_lba == total - last_from_end
    assert table.free_ranges() == [(first, total - last_from_end)]


def test_add_partitions_are_mib_aligned_and_numbered_in_order() -> None:
    table = new_table(64 * MIB)
    table, meta = table.add_partition(size=MIB, name="META")
    table, state = table.add_partition(size=10 * MIB, name="STATE")
    table, rest = table.add_partition(size=None, name="EPHEMERAL", type_guid=LINUX_SWAP)
    assert (meta.number, state.number, rest.number) == (1, 2, 3)
    assert meta.offset(512) == MIB
    assert meta.size(512) == MIB
    assert state.offset(512) == 2 * MIB
    assert state.size(512) == 10 * MIB
    assert rest.offset(512) == 12 * MIB
    # "the rest" ends on a MiB boundary (sgdisk would warn otherwise) and stays inside the usable area
    assert (rest.last_lba + 1) % 2048 == 0
    assert rest.last_lba <= table.last_usable_lba
    assert rest.type_guid == LINUX_SWAP
    assert table.find("STATE") == state
    assert table.find("BOOT") is None


def test_add_partition_fills_a_hole_first_fit_and_reuses_the_free_number() -> None:
    table = new_table(64 * MIB)
    table, _ = table.add_partition(size=4 * MIB, name="a")
    table, _ = table.add_partition(size=4 * MIB, name="b")
    table, _ = table.add_partition(size=4 * MIB, name="c")
    table = table.remove_partition(2)
    table, again = table.add_partition(size=2 * MIB, name="d")
    assert again.number == 2
    assert again.offset(512) == 5 * MIB


def test_layout_errors_name_the_problem() -> None:
    table = new_table(8 * MIB)
    with pytest.raises(LayoutError, match="no room"):
        table.add_partition(size=8 * MIB, name="big")
    with pytest.raises(LayoutError, match="longer than 36"):
        table.add_partition(size=MIB, name="x" * 37)
    with pytest.raises(LayoutError, match="must be positive"):
        table.add_partition(size=0, name="zero")
    with pytest.raises(LayoutError, match="no partition number 7"):
        table.remove_partition(7)
    with pytest.raises(LayoutError, match="no partition to grow"):
        table.grow_last_partition()
    with pytest.raises(LayoutError, match="too small"):
        new_table(16 * 1024)
    with pytest.raises(LayoutError, match="sector size"):
        new_table(MIB, sector_size=1024)


def test_all_entries_in_use() -> None:
    table = new_table(8 * MIB, entry_count=4)
    for i in range(4):
        table, _ = table.add_partition(size=512, name=f"p{i}", alignment=512)
    with pytest.raises(LayoutError, match="all 4 partition entries"):
        table.add_partition(size=512, name="p5", alignment=512)


def test_grow_last_partition_after_disk_resize_is_idempotent() -> None:
    table = new_table(32 * MIB)
    table, _ = table.add_partition(size=MIB, name="META")
    table, last = table.add_partition(size=4 * MIB, name="EPHEMERAL")
    bigger = table.resized(64 * MIB)
    assert bigger.last_usable_lba == 64 * MIB // 512 - 34
    grown_table, grown = bigger.grow_last_partition()
    assert grown.first_lba == last.first_lba
    assert grown.unique_guid == last.unique_guid
    assert (grown.last_lba + 1) * 512 == 63 * MIB
    assert grown_table.grow_last_partition()[1] == grown
    assert decode(image_of(grown_table)) == grown_table


def test_round_trip_4096_byte_sectors_and_unicode_names() -> None:
    table = new_table(32 * MIB, sector_size=4096)
    table, _ = table.add_partition(size=MIB, name="données-é😀")
    table, _ = table.add_partition(size=None, name="rest")
    assert decode(image_of(table), 4096) == table


def test_protective_mbr() -> None:
    disk = image_of(new_table(16 * MIB))
    assert disk[510:512] == b"\x55\xaa"
    status, type_, start, size = disk[446], disk[450], *struct.unpack_from("<II", disk, 454)
    assert (status, type_, start, size) == (0, 0xEE, 1, 16 * MIB // 512 - 1)


def _table_with(parts: list[tuple[int, str]], sector_size: int) -> PartitionTable:
    table = new_table(64 * MIB, sector_size=sector_size)
    for size, name in parts:
        table, _ = table.add_partition(size=size, name=name)
    return table


part_lists = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=6 * MIB), st.text(max_size=36).filter(lambda s: "\0" not in s)
    ),
    max_size=8,
).filter(lambda parts: all(len(name.encode("utf-16-le")) <= 72 for _, name in parts))


@given(parts=part_lists, sector_size=st.sampled_from([512, 4096]))
def test_round_trip_property(parts: list[tuple[int, str]], sector_size: int) -> None:
    table = _table_with(parts, sector_size)
    assert decode(image_of(table), sector_size) == table


@given(
    parts=part_lists,
    offset=st.integers(min_value=512, max_value=512 + 33 * 512 - 1),
    flip=st.integers(1, 255),
)
def test_any_corruption_of_the_primary_falls_back_to_the_backup(
    parts: list[tuple[int, str]], offset: int, flip: int
) -> None:
    table = _table_with(parts, 512)
    disk = image_of(table)
    disk[offset] ^= flip
    decoded = decode(disk)
    # The header's first 92 bytes and the whole entry array are covered by CRCs; the rest of the header
    # sector is padding that nobody reads.
    if 512 + 92 <= offset < 1024:
        assert decoded == table
    else:
        assert decoded.damage
        assert decoded.partitions == table.partitions
        assert decoded.disk_guid == table.disk_guid


def test_damage_is_reported_and_both_copies_damaged_is_an_error() -> None:
    table = _table_with([(MIB, "META"), (MIB, "STATE")], 512)
    disk = image_of(table)
    disk[512 + 16] ^= 1  # primary header CRC
    decoded = decode(disk)
    assert decoded.damage == ("primary header at LBA 1: header CRC32 mismatch",)
    assert decoded.partitions == table.partitions
    last = len(disk) - 512
    disk[last + 88] ^= 1  # backup entries CRC field
    with pytest.raises(CorruptTableError, match=r"both GPT copies are damaged: primary .*; backup .*CRC32"):
        decode(disk)


def test_bad_entry_array_crc_is_detected() -> None:
    table = _table_with([(MIB, "META")], 512)
    disk = image_of(table)
    disk[1024 + 56] ^= 0xFF  # name of entry 1 in the primary array
    decoded = decode(disk)
    assert decoded.damage == ("primary header at LBA 1: entry array CRC32 mismatch",)
    assert decoded.find("META") is not None


def test_no_gpt_at_all() -> None:
    with pytest.raises(NoPartitionTableError, match="no GPT found"):
        decode(bytearray(4 * MIB))


def test_backup_not_at_the_end_is_reported_after_the_disk_grew() -> None:
    table = _table_with([(MIB, "META")], 512)
    disk = image_of(table) + bytearray(MIB)
    decoded = decode(disk)
    assert decoded.partitions == table.partitions
    assert decoded.damage == (
        f"backup header is at LBA {table.total_sectors - 1}, not at the last LBA {len(disk) // 512 - 1}",
    )


def test_validate_rejects_overlaps_and_zero_type() -> None:
    table, a = _table_with([(4 * MIB, "a")], 512).add_partition(size=MIB, name="b")
    from dataclasses import replace

    overlapping = replace(table, partitions=(table.partitions[0], replace(a, first_lba=2048 + 10)))
    with pytest.raises(LayoutError, match="overlap"):
        overlapping.validate()
    zero = replace(table, partitions=(replace(a, type_guid=uuid.UUID(int=0)),))
    with pytest.raises(LayoutError, match="all-zero"):
        encode_table(zero)


def test_default_type_is_linux_filesystem_data() -> None:
    _, part = new_table(8 * MIB).add_partition(size=MIB, name="x")
    assert part.type_guid == LINUX_FILESYSTEM_DATA == uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4")


ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(min_value=1, max_value=12 * MIB)),
        st.tuples(st.just("rest"), st.just(0)),
        st.tuples(st.just("remove"), st.integers(min_value=1, max_value=6)),
        st.tuples(st.just("grow"), st.just(0)),
    ),
    max_size=12,
)


@given(ops=ops, sector_size=st.sampled_from([512, 4096]))
def test_any_sequence_of_edits_keeps_a_valid_table(ops: list[tuple[str, int]], sector_size: int) -> None:
    table = new_table(48 * MIB, sector_size=sector_size)
    for op, arg in ops:
        try:
            if op == "add":
                table, part = table.add_partition(size=arg, name=f"p{arg}")
                assert part.offset(sector_size) % MIB == 0
                assert part.size(sector_size) >= arg
            elif op == "rest":
                table, part = table.add_partition(size=None, name="rest")
                assert part.offset(sector_size) % MIB == 0
            elif op == "remove":
                table = table.remove_partition(arg)
            else:
                table, _ = table.grow_last_partition()
        except LayoutError:
            continue
        table.validate()
    used = sum(p.sectors for p in table.partitions)
    free = sum(last - first + 1 for first, last in table.free_ranges())
    assert used + free == table.last_usable_lba - table.first_usable_lba + 1
    assert decode(image_of(table), sector_size) == table
