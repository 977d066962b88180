"""Growing a partition into the free space after it: the pure layout step, on an image, and a torn write."""

from __future__ import annotations

import contextlib
import json
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_tool
from volumed.storage.blockdev import RegionHandle
from volumed.storage.gpt import (
    LayoutError,
    grow_partition,
    grow_partition_on_disk,
    new_table,
    read_partition_table,
    write_partition_table,
)

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024


def _image(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "disk.img"
    with path.open("wb") as f:
        f.truncate(size)
    return path


def _layout(tmp_path: Path) -> Path:
    """META 1 MiB, STATE 8 MiB, EPHEMERAL 16 MiB, written by sfdisk (not our code) on a 32 MiB image."""
    image = _image(tmp_path, 32 * MIB)
    script = (
        "label: gpt\n"
        "start=2048, size=2048, name=META\n"
        "start=4096, size=16384, name=STATE\n"
        "start=20480, size=32768, name=EPHEMERAL\n"
    )
    subprocess.run([require_tool("sfdisk"), "-q", str(image)], input=script, text=True, check=True)
    return image


def _sfdisk(image: Path) -> dict[str, int]:
    out = subprocess.run(
        [require_tool("sfdisk"), "--json", str(image)], capture_output=True, text=True, check=True
    ).stdout
    return {p["name"]: p["size"] * 512 for p in json.loads(out)["partitiontable"]["partitions"]}


def _sgdisk_ok(image: Path) -> None:
    done = subprocess.run([require_tool("sgdisk"), "-v", str(image)], capture_output=True, text=True)
    assert "No problems found" in done.stdout, done.stdout


def _grow_image(image: Path, size: int) -> None:
    with image.open("r+b") as f:
        f.truncate(size)


def test_the_last_partition_takes_the_new_space_up_to_an_aligned_end(tmp_path: Path) -> None:
    image = _layout(tmp_path)
    _grow_image(image, 64 * MIB)
    growth = grow_partition_on_disk(image, 3)
    assert (growth.old_size, growth.new_size, growth.offset) == (16 * MIB, 53 * MIB, 10 * MIB)
    assert _sfdisk(image) == {
        "META": MIB,
        "STATE": 8 * MIB,
        "EPHEMERAL": 53 * MIB,
    }  # 10..63 MiB: the backup's 33 sectors end the disk
    _sgdisk_ok(image)  # the backup moved to the new end
    again = grow_partition_on_disk(image, 3)  # idempotent: nothing more to take
    assert (again.grew, again.new_size) == (False, 53 * MIB)


def test_max_size_bounds_the_growth(tmp_path: Path) -> None:
    image = _layout(tmp_path)
    _grow_image(image, 64 * MIB)
    assert grow_partition_on_disk(image, 3, max_size=40 * MIB).new_size == 40 * MIB
    assert _sfdisk(image)["EPHEMERAL"] == 40 * MIB
    _sgdisk_ok(image)
    # at its maximum: nothing is written at all
    before = image.read_bytes()
    assert not grow_partition_on_disk(image, 3, max_size=40 * MIB).grew
    assert image.read_bytes() == before


def test_a_partition_grows_only_into_the_gap_before_the_next_one(tmp_path: Path) -> None:
    image = _image(tmp_path, 64 * MIB)
    table = new_table(64 * MIB)
    table, _ = table.add_partition(size=4 * MIB, name="A")
    table, _ = table.add_partition(size=4 * MIB, name="GAP")
    table, b = table.add_partition(size=8 * MIB, name="B")
    table = table.remove_partition(2)  # 4 MiB free after A, B after the gap
    write_partition_table(image, table)
    growth = grow_partition_on_disk(image, 1)
    assert (growth.old_size, growth.new_size) == (4 * MIB, 8 * MIB)
    assert _sfdisk(image) == {"A": 8 * MIB, "B": 8 * MIB}
    assert read_partition_table(image).partition(3) == b
    _sgdisk_ok(image)


def test_a_growth_of_one_mib_or_less_is_not_made() -> None:
    table, part = new_table(16 * MIB).add_partition(size=8 * MIB, name="A")
    table, _ = table.add_partition(size=MIB, name="B")  # right after A? no: 1 MiB gap first
    table = table.remove_partition(2)
    bigger = table.resized(10 * MIB + 34 * 512 + 512)  # 1 MiB after A, minus the backup area
    _, same = grow_partition(bigger, 1)
    assert same == part
    assert grow_partition(table, 1, min_growth=0)[1].last_lba > part.last_lba


def test_never_shrinks_and_names_a_missing_partition() -> None:
    table, part = new_table(16 * MIB).add_partition(size=None, name="A")
    assert grow_partition(table, 1, max_size=MIB)[1] == part  # over its maximum already: left as it is
    with pytest.raises(LayoutError, match="no partition number 2"):
        grow_partition(table, 2)


def test_an_unaligned_end_grows_to_an_aligned_one() -> None:
    table, part = new_table(64 * MIB).add_partition(size=5 * MIB + 512, name="A")
    _, grown = grow_partition(table, 1)
    assert (grown.last_lba + 1) % 2048 == 0
    assert grown.first_lba == part.first_lba


@pytest.mark.parametrize("crash_after", range(1, 6))
def test_a_write_cut_short_leaves_the_old_or_the_new_table(
    tmp_path: Path, crash_after: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GPT of a disk that grew, written with a crash after its N-th write: the next read finds either
    table (the backup moves to the disk's new end; a reader falls back to the last sector)."""
    image = _layout(tmp_path)
    _grow_image(image, 64 * MIB)
    writes: list[int] = []
    real_write = RegionHandle.write

    class Crash(Exception):
        pass

    def write(self: RegionHandle, offset: int, data: bytes) -> None:
        if len(writes) == crash_after:
            raise Crash
        writes.append(offset)
        real_write(self, offset, data)

    monkeypatch.setattr(RegionHandle, "write", write)
    with contextlib.suppress(Crash):
        grow_partition_on_disk(image, 3)
    monkeypatch.undo()
    size = read_partition_table(image).partition(3).size(512)
    assert size in (16 * MIB, 53 * MIB)
    assert grow_partition_on_disk(image, 3).new_size == 53 * MIB  # the next boot completes it
    _sgdisk_ok(image)


def test_a_relative_max_size_keeps_its_share_of_the_space_from_the_partition_start(tmp_path: Path) -> None:
    """A 50% partition stays at half of the space up to the disk's end until the disk grows, then takes half
    of the new space (it took all the free space at the next boot: only an absolute maxSize bounded it)."""
    image = _layout(tmp_path)  # EPHEMERAL 10..26 MiB; 31 MiB usable: 5 MiB free after it
    _grow_image(image, 42 * MIB)  # 10..41 MiB: 31 MiB from its start, half is 15.5, aligned down 15
    assert not grow_partition_on_disk(image, 3, relative_max_size=50).grew  # 16 MiB already: never shrinks
    _grow_image(image, 74 * MIB)  # 10..73 MiB: 63 MiB from its start, half is 31.5 -> 31 MiB
    growth = grow_partition_on_disk(image, 3, relative_max_size=50)
    assert (growth.old_size, growth.new_size) == (16 * MIB, 31 * MIB)
    assert _sfdisk(image)["EPHEMERAL"] == 31 * MIB
    _sgdisk_ok(image)
    assert not grow_partition_on_disk(image, 3, relative_max_size=50).grew  # idempotent
