"""Talos' disk facts on this host's real block devices (root): a loop device, and the virtio disk when the
host has one (this host's kernel has no device-mapper: the kernel tier checks secondary_disks). Expected
values follow Talos' recipe applied to what the kernel shows (the /sys/dev/block link, the queue limits),
not volumed's code."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

import pytest

from tests.system.storage._loops import loop_device
from volumed.config import compile_selector
from volumed.controllers.block._discovery import Discovery, scan_block_devices
from volumed.controllers.block._provisioning import _description
from volumed.storage.blockdev import is_cdrom, read_disk_properties

pytestmark = pytest.mark.system

MIB = 1024 * 1024


def talos_bus_path(name: str) -> str:
    """go-blockdevice: Dir(Dir(TrimPrefix(Readlink("/sys/dev/block/MAJ:MIN"), "../../devices")))."""
    dev = Path(f"/sys/block/{name}/dev").read_text().strip()
    target = os.readlink(f"/sys/dev/block/{dev}").removeprefix("../../devices")
    return posixpath.dirname(posixpath.dirname(target))


def talos_io_size(name: str) -> int:
    queue = Path(f"/sys/block/{name}/queue")
    for attr in ("optimal_io_size", "minimum_io_size"):
        size = int((queue / attr).read_text())
        if size > 0 and size & (size - 1) == 0:
            return size
    return 512


def test_loop_device(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(b"")
    os.truncate(image, 16 * MIB)
    with loop_device(image) as dev:
        loop = posixpath.basename(dev)
        got = read_disk_properties(loop)
        assert (got.transport, got.bus_path, got.sub_system) == ("", "/virtual", "/sys/class/block")
        assert got.bus_path == talos_bus_path(loop)
        assert got.io_size == talos_io_size(loop)
        assert (got.modalias, got.wwid, got.uuid, got.secondary_disks) == ("", "", "", ())
        assert not is_cdrom(dev)


@pytest.mark.skipif(not Path("/sys/block/vda").exists(), reason="this host has no virtio disk vda")
def test_virtio_disk_of_this_host() -> None:
    got = read_disk_properties("vda")
    assert got.transport == "virtio"
    assert got.bus_path == talos_bus_path("vda")
    assert got.bus_path.startswith("/pci")
    assert got.modalias == Path("/sys/block/vda/device/modalias").read_text().strip()
    assert got.modalias.startswith("virtio:d00000002")  # virtio device id 2: block
    assert got.sub_system == "/sys/class/block"
    assert got.io_size == talos_io_size("vda")
    assert not is_cdrom("/dev/vda")
    # discovery puts them on the Disk, and a CEL selector sees them
    result = Discovery()
    scan_block_devices(result)
    disk = result.disks["vda"]
    assert (disk.transport, disk.modalias, disk.bus_path, disk.io_size) == (
        "virtio",
        got.modalias,
        got.bus_path,
        got.io_size,
    )
    selector = compile_selector(f'disk.modalias == "{got.modalias}" && disk.bus_path == "{got.bus_path}"')
    assert selector.matches(_description(disk))
    assert not compile_selector('disk.transport == "scsi"').matches(_description(disk))
