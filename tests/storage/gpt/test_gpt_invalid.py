"""GPTs whose CRCs are right but whose layout is impossible are refused, naming the disk and the partitions.

The tables are crafted by editing the entry arrays of a valid image by hand (`_craft`: raw offsets, zlib
CRCs), not with volumed's writer, which refuses to make them.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from tests.storage.gpt._craft import edit_gpt, entry, read_entries, set_entry, set_first_usable
from volumed.storage import disklayout
from volumed.storage.gpt import (
    CorruptTableError,
    InvalidTableError,
    LayoutError,
    new_table,
    read_partition_table,
    write_partition_table,
)

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A 256 MiB image with the Talos layout: 1 META (LBA 2048..), 2 STATE (4096..208895), 3 EPHEMERAL."""
    path = tmp_path / "disk.img"
    disklayout.create_disk_image(path, 256 * MIB)
    return path


def test_ephemeral_starting_inside_state_is_refused_naming_both(image: Path) -> None:
    state_first, state_last = entry(read_entries(image), 2)
    _, eph_last = entry(read_entries(image), 3)
    edit_gpt(image, lambda a: set_entry(a, 3, first=state_first + 100))
    with pytest.raises(InvalidTableError) as caught:
        read_partition_table(image)
    assert str(caught.value) == (
        f"disk {image}: GPT partitions 3 (EPHEMERAL, LBA {state_first + 100}..{eph_last}) and "
        f"2 (STATE, LBA {state_first}..{state_last}) overlap"
    )
    assert [p.name for p in caught.value.partitions] == ["META", "STATE", "EPHEMERAL"]
    assert isinstance(caught.value, CorruptTableError)  # callers that refuse damaged tables refuse it too


def test_a_partition_inside_another_is_found_past_a_shorter_neighbour(image: Path) -> None:
    """The sweep compares with the partition reaching furthest, not only the previous one."""
    _, eph_last = entry(read_entries(image), 3)
    # META now spans the whole disk: STATE and EPHEMERAL both lie inside it.
    edit_gpt(image, lambda a: set_entry(a, 1, last=eph_last))
    with pytest.raises(
        InvalidTableError, match=r"partitions 2 \(STATE.*\) and 1 \(META.*overlap; .*3 \(EPHEMERAL"
    ):
        read_partition_table(image)


def test_a_partition_ending_before_it_starts(image: Path) -> None:
    first, last = entry(read_entries(image), 3)
    edit_gpt(image, lambda a: set_entry(a, 3, first=last, last=first))
    with pytest.raises(
        InvalidTableError, match=rf"partition 3 \(EPHEMERAL, LBA {last}\.\.{first}\) ends before"
    ):
        read_partition_table(image)


def test_a_usable_area_over_the_entry_array(image: Path) -> None:
    edit_gpt(image, lambda a: set_entry(a, 1, first=10), edit_header=lambda h: set_first_usable(h, 10))
    with pytest.raises(InvalidTableError) as caught:
        read_partition_table(image)
    message = str(caught.value)
    assert "the usable area LBA 10.." in message
    assert "overlaps the primary entry array (LBA 2..33)" in message
    assert "GPT partition 1 (META, LBA 10..4095) overlaps the primary entry array (LBA 2..33)" in message


def test_duplicate_unique_guids(image: Path) -> None:
    same = uuid.UUID("11111111-2222-3333-4444-555555555555")
    edit_gpt(image, lambda a: (set_entry(a, 2, unique=same), set_entry(a, 3, unique=same)))
    with pytest.raises(InvalidTableError, match=f"2 \\(STATE.*and 3 \\(EPHEMERAL.*same unique GUID {same}"):
        read_partition_table(image)


def test_an_invalid_primary_is_not_replaced_by_the_backup(image: Path) -> None:
    """Two readable copies of which one is impossible: neither is trusted (no 'repair' from the backup)."""
    state_first, _ = entry(read_entries(image), 2)
    edit_gpt(image, lambda a: set_entry(a, 3, first=state_first), copies=("primary",))
    with pytest.raises(InvalidTableError, match=r"^disk .*: primary GPT copy: GPT partitions 3 \(EPHEMERAL"):
        read_partition_table(image)


def test_an_invalid_backup_behind_a_damaged_primary(image: Path) -> None:
    state_first, _ = entry(read_entries(image), 2)
    edit_gpt(image, lambda a: set_entry(a, 3, first=state_first), copies=("backup",))
    with image.open("r+b") as disk:  # break the primary header's CRC
        disk.seek(512 + 16)
        disk.write(b"\xff\xff\xff\xff")
    with pytest.raises(InvalidTableError, match=r"^disk .*: GPT partitions 3 \(EPHEMERAL.*overlap$"):
        read_partition_table(image)


def test_many_problems_are_summed_up(tmp_path: Path) -> None:
    path = tmp_path / "many.img"
    with path.open("wb") as f:
        f.truncate(64 * MIB)
    table = new_table(64 * MIB)
    for n in range(20):
        table, _ = table.add_partition(size=MIB, name=f"p{n}")
    write_partition_table(path, table)
    edit_gpt(path, lambda a: [set_entry(a, n, first=2048) for n in range(2, 21)])
    with pytest.raises(InvalidTableError, match=r"overlap; and 11 more problems$"):
        read_partition_table(path)


def test_validate_refuses_duplicate_unique_guids() -> None:
    from dataclasses import replace

    table, first = new_table(16 * MIB).add_partition(size=MIB, name="a")
    table, second = table.add_partition(size=MIB, name="b")
    twin = replace(second, unique_guid=first.unique_guid)
    with pytest.raises(LayoutError, match="partitions 1 and 2 have the same unique GUID"):
        replace(table, partitions=(first, twin)).validate()


def test_a_valid_table_still_reads(image: Path) -> None:
    table = read_partition_table(image)
    assert [p.name for p in table.partitions] == ["META", "STATE", "EPHEMERAL"]
    assert table.named("STATE") == (table.partition(2),)
