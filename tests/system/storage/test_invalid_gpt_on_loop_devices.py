"""An invalid GPT read through a real block device (a loop device, with 512- and 4096-byte logical sectors):
the error names the device and the partitions, and nothing is probed or wiped."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest

from tests.storage.gpt._craft import edit_gpt, entry, read_entries, set_entry
from tests.system.storage._loops import loop_device
from volumed.controllers.block._discovery import _table_error
from volumed.storage import disklayout
from volumed.storage.gpt import InvalidTableError

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024


@pytest.mark.parametrize("sector_size", [512, 4096])
def test_overlap_on_a_block_device(tmp_path: Path, sector_size: int) -> None:
    image = tmp_path / "disk.img"
    disklayout.create_disk_image(image, 256 * MIB, sector_size=sector_size)
    entries = read_entries(image, sector_size)
    state_first, state_last = entry(entries, 2)
    _, eph_last = entry(entries, 3)
    edit_gpt(image, lambda a: set_entry(a, 3, first=state_last), sector_size=sector_size)
    before = hashlib.sha256(image.read_bytes()).hexdigest()

    with loop_device(image, sector_size=sector_size) as dev:
        expected = (
            f"disk {dev}: GPT partitions 3 (EPHEMERAL, LBA {state_last}..{eph_last}) and "
            f"2 (STATE, LBA {state_first}..{state_last}) overlap"
        )
        assert _table_error(dev) == expected
        with pytest.raises(InvalidTableError) as caught:
            disklayout.discover_volumes(dev)
        assert str(caught.value) == expected
        with pytest.raises(InvalidTableError):
            disklayout.wipe_system_partitions(dev, ["EPHEMERAL"])
    assert hashlib.sha256(image.read_bytes()).hexdigest() == before
