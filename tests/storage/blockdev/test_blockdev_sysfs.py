"""sysfs discovery over a sysfs-shaped tree (the layout of /sys/block on Linux 6.x)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from volumed.storage.blockdev import list_block_devices, read_block_device

if TYPE_CHECKING:
    from pathlib import Path


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    root = tmp_path / "sys"
    dev = root / "devices" / "pci0000:00" / "0000:00:04.0" / "nvme" / "nvme0" / "nvme0n1"
    write(dev / "size", "2097152")
    write(dev / "ro", "0")
    write(dev / "removable", "0")
    write(dev / "queue" / "rotational", "0")
    write(dev / "queue" / "logical_block_size", "4096")
    write(dev / "device" / "model", "Fast SSD  ")
    write(dev / "device" / "serial", "S123")
    write(dev / "wwid", "eui.0123")
    for n, (start, size, name) in enumerate([(2048, 2048, "META"), (4096, 204800, "STATE")], start=1):
        part = dev / f"nvme0n1p{n}"
        write(part / "partition", str(n))
        write(part / "start", str(start))
        write(part / "size", str(size))
        write(
            part / "uevent",
            f"MAJOR=259\nMINOR={n}\nDEVNAME=nvme0n1p{n}\nDEVTYPE=partition\nPARTN={n}\nPARTNAME={name}\n"
            f"PARTUUID=0000000{n}-aaaa-bbbb-cccc-dddddddddddd",
        )
    loop = root / "devices" / "virtual" / "block" / "loop0"
    write(loop / "size", "0")
    write(loop / "ro", "0")
    loop1 = root / "devices" / "virtual" / "block" / "loop1"
    write(loop1 / "size", "8")
    write(loop1 / "ro", "1")
    write(loop1 / "queue" / "rotational", "1")
    write(loop1 / "loop" / "backing_file", "/tmp/disk.img")
    write(loop1 / "loop" / "offset", "1048576")
    write(loop1 / "loop" / "sizelimit", "4096")
    block = root / "block"
    block.mkdir()
    for target in (dev, loop, loop1):
        (block / target.name).symlink_to(target)
    return root


def test_list_skips_empty_devices_and_reads_facts(sysfs: Path) -> None:
    disks = list_block_devices(sysfs=str(sysfs), dev_root="/dev")
    assert [d.name for d in disks] == ["loop1", "nvme0n1"]
    nvme = disks[1]
    assert nvme.size == 2097152 * 512
    assert nvme.logical_sector_size == 4096
    assert (nvme.model, nvme.serial, nvme.wwid, nvme.transport) == ("Fast SSD", "S123", "eui.0123", "nvme")
    assert not nvme.rotational
    assert not nvme.readonly
    assert nvme.backing_file is None
    assert [(p.number, p.label, p.start, p.size, p.dev_path) for p in nvme.partitions] == [
        (1, "META", 1 << 20, 1 << 20, "/dev/nvme0n1p1"),
        (2, "STATE", 2 << 20, 100 << 20, "/dev/nvme0n1p2"),
    ]
    assert nvme.partitions[1].uuid == "00000002-aaaa-bbbb-cccc-dddddddddddd"
    loop1 = disks[0]
    assert (loop1.readonly, loop1.rotational, loop1.transport, loop1.backing_file) == (
        True,
        True,
        None,
        "/tmp/disk.img",
    )
    assert (loop1.backing_offset, loop1.backing_size_limit) == (1 << 20, 4096)
    assert (nvme.backing_offset, nvme.backing_size_limit) == (0, 0)
    assert len(list_block_devices(sysfs=str(sysfs), include_empty=True)) == 3


def test_unknown_device(sysfs: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no block device 'sdz'"):
        read_block_device("sdz", sysfs=str(sysfs))
