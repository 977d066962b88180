"""A disk whose GPT cannot be read (both copies damaged: entry size 129, header size 91, a usable area past
the end, ...): the disk is reported with the reason, and a system volume found on no readable disk is
listed with that reason (it may be on that disk), not silently missing. Nothing on the disk is written."""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import TYPE_CHECKING

import anyio
import pytest
from structlog.testing import capture_logs

from volumed.controllers import DiscoveryController
from volumed.controllers.block._discovery import (
    Discovery,
    _unlocated_system_volumes,
    discover,
    image_disk_id,
    scan_block_devices,
)
from volumed.resources import BLOCK, DiscoveredVolumeDefinition
from volumed.runtime import Kind, in_memory_state
from volumed.runtime.controller import Runtime
from volumed.storage import disklayout
from volumed.storage.gpt import new_table, write_partition_table

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024
SS = 512


def break_both_headers(path: Path, offset: int, fmt: str, value: int, *, crc_over: int = 92) -> None:
    """Set one header field in both copies and recompute the header CRC (the copy stays self-consistent)."""
    total = path.stat().st_size // SS
    with path.open("r+b") as disk:
        for lba in (1, total - 1):
            disk.seek(lba * SS)
            header = bytearray(disk.read(SS))
            struct.pack_into(fmt, header, offset, value)
            struct.pack_into("<I", header, 16, 0)
            struct.pack_into("<I", header, 16, zlib.crc32(bytes(header[:crc_over])))
            disk.seek(lba * SS)
            disk.write(header)


CASES = {
    "header size 91": (12, "<I", 91, 91, "header size 91"),
    "entry size 129": (84, "<I", 129, 92, "entry size 129"),
    "last usable past the end": (48, "<Q", 600_000, 92, "does not fit a disk"),
}


@pytest.mark.parametrize("case", CASES)
def test_an_unreadable_system_disk_names_its_reason_for_each_system_volume(tmp_path: Path, case: str) -> None:
    offset, fmt, value, crc_over, reason = CASES[case]
    system = tmp_path / "sys.img"
    disklayout.create_disk_image(system, 256 * MIB)
    break_both_headers(system, offset, fmt, value, crc_over=crc_over)
    before = hashlib.sha256(system.read_bytes()).hexdigest()

    found = discover([str(system)])

    assert reason in found.invalid[str(system)]
    assert "both GPT copies are damaged" in found.invalid[str(system)]
    by_label = {v.partition_label: v for v in found.volumes.values()}
    assert sorted(by_label) == ["EPHEMERAL", "META", "STATE"]
    for volume in by_label.values():
        assert volume.error.startswith(f"missing; disk {system} has an unreadable partition table: ")
        assert reason in volume.error
        assert (volume.size, volume.offset, volume.name) == (0, 0, "")
    assert hashlib.sha256(system.read_bytes()).hexdigest() == before


def test_system_volumes_found_on_a_readable_disk_are_not_blamed_on_an_unreadable_one(tmp_path: Path) -> None:
    system = tmp_path / "sys.img"
    disklayout.create_disk_image(system, 256 * MIB)
    data = tmp_path / "data.img"
    disklayout.create_disk_image(data, 256 * MIB)
    break_both_headers(data, 12, "<I", 600, crc_over=92)

    found = discover([str(system), str(data)])

    assert list(found.invalid) == [str(data)]
    assert all(not v.error for v in found.volumes.values())
    assert {v.partition_label for v in found.volumes.values()} == {"META", "STATE", "EPHEMERAL"}


def test_a_blank_disk_is_not_an_unreadable_table(tmp_path: Path) -> None:
    blank = tmp_path / "blank.img"
    blank.write_bytes(bytes(16 * MIB))
    empty = tmp_path / "empty.img"
    empty.write_bytes(bytes(16 * MIB))
    write_partition_table(empty, new_table(16 * MIB), reread=False)

    found = discover([str(blank), str(empty)])

    assert found.invalid == {}
    assert image_disk_id(str(blank)) in found.disks
    assert all(not v.error for v in found.volumes.values())


def test_a_block_device_with_an_unreadable_table_is_not_probed(tmp_path: Path) -> None:
    """The kernel shows no partitions of such a GPT: the disk was probed whole and STATE was 'missing'."""
    dev = tmp_path / "dev"
    dev.mkdir()
    image = dev / "vda"
    disklayout.create_disk_image(image, 256 * MIB)
    break_both_headers(image, 84, "<I", 129)
    sysfs = tmp_path / "sys"
    disk = sysfs / "devices" / "virtual" / "block" / "vda"
    disk.mkdir(parents=True)
    (disk / "size").write_text(f"{256 * MIB // 512}\n")
    (disk / "ro").write_text("0\n")
    (sysfs / "block").mkdir()
    (sysfs / "block" / "vda").symlink_to(disk)

    result = Discovery()
    scan_block_devices(result, sysfs=str(sysfs), dev_root=str(dev))
    _unlocated_system_volumes(result)

    assert "entry size 129" in result.invalid[str(image)]
    assert result.volumes["vda"].error == result.invalid[str(image)]
    assert result.volumes["vda"].size == 0
    state = next(v for v in result.volumes.values() if v.partition_label == "STATE")
    assert state.error.startswith(f"missing; disk {image} has an unreadable partition table: ")


async def test_the_controller_logs_an_unreadable_table_once_and_publishes_the_reason(tmp_path: Path) -> None:
    system = tmp_path / "sys.img"
    disklayout.create_disk_image(system, 256 * MIB)
    break_both_headers(system, 12, "<I", 600)
    state = in_memory_state()
    runtime = Runtime(state)
    runtime.register(DiscoveryController([str(system)], interval=0.01))
    with capture_logs() as logs:
        async with runtime:
            with anyio.fail_after(30):
                while runtime.stats()["Discovery"].reconciles < 5:  # noqa: ASYNC110 (counters, no event)
                    await anyio.sleep(0.01)
            volumes = await state.list(Kind(BLOCK, DiscoveredVolumeDefinition.type))
    errors = [r for r in logs if r["log_level"] == "error"]
    assert [(r["event"], r["disk"]) for r in errors] == [
        ("disk not used: unreadable partition table", str(system))
    ]
    assert "header size 600" in errors[0]["reason"]
    state_volume = next(v.spec for v in volumes if v.spec.partition_label == "STATE")
    assert state_volume.error.startswith(f"missing; disk {system} has an unreadable partition table: ")
