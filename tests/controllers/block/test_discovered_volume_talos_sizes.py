"""Discovery puts Talos' io_size, block_size, filesystem_block_size, probed_size and device_path on each
DiscoveredVolume (issue 17): block devices from a sysfs tree laid out as the kernel does (partitions are
image files standing for their device nodes), disk images as volumed reads them.

Expected values: the sysfs layout (Talos' DevicePath is the resolved ``/sys/block/<disk>`` link, a
partition's its disk's joined with the partition's name), dumpe2fs and fsck.fat (not our parser).
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import TYPE_CHECKING, Final

from tests._tools import require_tool
from volumed.controllers.block._discovery import Discovery, scan_block_devices, scan_image
from volumed.storage import disklayout

if TYPE_CHECKING:
    from pathlib import Path

MIB: Final = 1 << 20


def _run(*argv: str) -> str:
    done = subprocess.run([require_tool(argv[0]), *argv[1:]], capture_output=True, text=True, check=True)
    return done.stdout


def _number(pattern: str, text: str) -> int:
    found = re.search(pattern, text, re.MULTILINE)
    assert found is not None, text
    return int(found.group(1))


def _file(path: Path, size: int) -> Path:
    with path.open("wb") as file:
        file.truncate(size)
    return path


def test_block_device_partitions(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    dev.mkdir()
    _file(dev / "vda", 64 * MIB)  # no partition table: the kernel's view (sysfs) is taken
    _run("mkfs.ext4", "-q", "-F", "-b", "4096", str(_file(dev / "vda1", 16 * MIB)))
    _run("mkfs.vfat", "-F", "16", "-s", "4", str(_file(dev / "vda2", 16 * MIB)))
    sysfs = tmp_path / "sys"
    disk = sysfs / "devices" / "pci0000:00" / "0000:00:05.0" / "virtio2" / "block" / "vda"
    (disk / "queue").mkdir(parents=True)
    (disk / "size").write_text(f"{64 * MIB // 512}\n")
    (disk / "queue" / "optimal_io_size").write_text("0\n")
    (disk / "queue" / "minimum_io_size").write_text("4096\n")
    (disk / "queue" / "logical_block_size").write_text("4096\n")
    for n in (1, 2):
        part = disk / f"vda{n}"
        part.mkdir()
        (part / "partition").write_text(f"{n}\n")
        (part / "start").write_text(f"{2048 + (n - 1) * 32768}\n")
        (part / "size").write_text(f"{16 * MIB // 512}\n")
        (part / "uevent").write_text(f"DEVNAME=vda{n}\nDEVTYPE=partition\nPARTN={n}\nPARTNAME=p{n}\n")
    (sysfs / "block").mkdir()
    (sysfs / "block" / "vda").symlink_to(disk)

    result = Discovery()
    scan_block_devices(result, sysfs=str(sysfs), dev_root=str(dev))

    ext4, vfat = result.volumes["vda1"], result.volumes["vda2"]
    real_disk = os.path.realpath(disk)
    assert (ext4.device_path, vfat.device_path) == (f"{real_disk}/vda1", f"{real_disk}/vda2")
    assert (ext4.io_size, vfat.io_size) == (4096, 4096)  # the disk's minimum I/O size: optimal is 0
    assert (ext4.sector_size, vfat.sector_size) == (4096, 4096)  # the disk's logical sector size
    dump = _run("dumpe2fs", "-h", str(dev / "vda1"))
    block = _number(r"^Block size:\s+(\d+)", dump)
    assert (ext4.name, ext4.block_size, ext4.filesystem_block_size, ext4.probed_size) == (
        "ext4",
        block,
        block,
        block * _number(r"^Block count:\s+(\d+)", dump),
    )
    fat = _run("fsck.fat", "-n", "-v", str(dev / "vda2"))
    sector = _number(r"^\s*(\d+) bytes per logical sector", fat)
    assert (vfat.name, vfat.block_size, vfat.filesystem_block_size, vfat.probed_size) == (
        "vfat",
        sector,
        _number(r"^\s*(\d+) bytes per cluster", fat),
        sector * _number(r"^\s*(\d+) sectors total", fat),
    )


def test_disk_image_partitions(tmp_path: Path) -> None:
    """A disk image has no sysfs directory (device_path empty) and Talos' I/O size of a regular file, 512."""
    image = tmp_path / "disk.img"
    disklayout.create_disk_image(image, 256 * MIB)
    result = Discovery()
    scan_image(str(image), result)
    volumes = [v for v in result.volumes.values() if v.parent]
    assert volumes
    for volume in volumes:
        assert (volume.io_size, volume.sector_size, volume.device_path) == (512, 512, "")
        if not volume.name:  # nothing probed there: Talos' sizes are 0 too
            assert (volume.block_size, volume.filesystem_block_size, volume.probed_size) == (0, 0, 0)
