"""Talos' disk facts over sysfs-shaped trees: each tree is laid out as Linux 6.x lays out /sys, and each
expected value is worked out here from Talos v1.12's sources (go-blockdevice v2 ``GetProperties``,
``getTransport``, ``GetIOSize``; Talos ``sysblock.ReadSecondaries`` and the Disks controller's partition to
disk mapping), not from volumed's code."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from volumed.storage.blockdev import DiskProperties, read_block_device, read_disk_properties
from volumed.storage.blockdev._disk_props import bus_path_of, io_size_of

if TYPE_CHECKING:
    from pathlib import Path

PCI = "devices/pci0000:00"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def link(at: Path, target: Path) -> None:
    """A relative symlink ending in the target's name, as sysfs spells them (``../../../0:0:0:0``)."""
    at.parent.mkdir(parents=True, exist_ok=True)
    at.symlink_to(os.path.join(os.path.relpath(target.parent, at.parent), target.name))


class Tree:
    """A /sys: ``disk`` adds ``<devices path>/block/<name>`` with the links a kernel makes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "class" / "block").mkdir(parents=True)

    def disk(
        self, devices_path: str, name: str, *, device: str | None = None, io: tuple[int, int] = (0, 512)
    ) -> Path:
        path = self.root / devices_path / "block" / name
        write(path / "size", "2048")
        write(path / "dev", "8:0")
        write(path / "queue" / "optimal_io_size", str(io[0]))
        write(path / "queue" / "minimum_io_size", str(io[1]))
        link(path / "subsystem", self.root / "class" / "block")
        link(self.root / "block" / name, path)
        link(self.root / "class" / "block" / name, path)
        if device is not None:
            link(path / "device", self.root / device)
        return path

    def partition(self, disk: Path, name: str) -> None:
        write(disk / name / "partition", "5")
        link(self.root / "class" / "block" / name, disk / name)

    def scsi_host(self, number: int, proc_name: str, *kinds: str) -> None:
        write(self.root / "class" / "scsi_host" / f"host{number}" / "proc_name", proc_name)
        for kind in kinds:
            (self.root / "class" / f"{kind}_host" / f"host{number}").mkdir(parents=True, exist_ok=True)

    def scsi_disk(self, name: str, host_path: str, host: int, proc_name: str, *kinds: str) -> Path:
        """A SCSI disk ``<host_path>/host<N>/target<N>:0:0/<N>:0:0:0/block/<name>`` on a host driven by
        ``proc_name`` (and of the transport classes ``kinds``)."""
        hctl = f"{host}:0:0:0"
        device = f"{host_path}/host{host}/target{host}:0:0/{hctl}"
        link(self.root / "bus" / "scsi" / "devices" / hctl, self.root / device)
        self.scsi_host(host, proc_name, *kinds)
        return self.disk(f"{device}", name, device=device)


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path / "sys")


def props(tree: Tree, name: str) -> DiskProperties:
    return read_disk_properties(name, sysfs=str(tree.root))


def test_virtio_blk_disk(tree: Tree) -> None:
    path = tree.disk(f"{PCI}/0000:00:04.0/virtio1", "vda", device=f"{PCI}/0000:00:04.0/virtio1", io=(0, 4096))
    write(path / "device" / "modalias", "virtio:d00000002v00001AF4")
    got = props(tree, "vda")
    # transport by name ("vd"); bus_path: the /sys/dev/block link less "../../devices" and "block/vda"
    assert got.transport == "virtio"
    assert got.bus_path == "/pci0000:00/0000:00:04.0/virtio1"
    assert got.sub_system == "/sys/class/block"
    assert got.modalias == "virtio:d00000002v00001AF4"
    assert (got.wwid, got.uuid, got.secondary_disks) == ("", "", ())
    assert got.io_size == 4096  # optimal 0 is passed over, minimum 4096


@pytest.mark.parametrize(
    ("proc_name", "kinds", "transport"),
    [
        ("ahci", ("scsi",), "sata"),
        ("sata", ("scsi",), "sata"),
        ("ata_piix", ("scsi",), "ata"),  # any other driver with "ata" in its name
        ("pata_via", ("scsi",), "ata"),
        ("virtio_scsi", ("scsi",), "virtio"),
        ("mpt3sas", ("scsi", "sas"), "sas"),
        ("qla2xxx", ("scsi", "fc"), "fc"),
        ("iscsi_tcp", ("scsi", "iscsi"), "iscsi"),
        ("megaraid_sas", ("scsi",), ""),  # a SCSI host Talos has no name for (volumed said "scsi")
    ],
)
def test_transport_of_a_scsi_disk_is_its_host(
    tree: Tree, proc_name: str, kinds: tuple[str, ...], transport: str
) -> None:
    tree.scsi_disk("sda", f"{PCI}/0000:00:1f.2/ata1", 0, proc_name, *kinds)
    assert props(tree, "sda").transport == transport
    # the BlockDeviceInfo discovery reads carries the same name (None for none)
    assert read_block_device("sda", sysfs=str(tree.root)).transport == (transport or None)


def test_sata_disk_facts(tree: Tree) -> None:
    path = tree.scsi_disk("sda", f"{PCI}/0000:00:1f.2/ata1", 0, "ahci", "scsi")
    write(path / "device" / "wwid", "t10.ATA     QEMU HARDDISK                           QM00001")
    write(path / "device" / "modalias", "scsi:t-0x00")
    got = props(tree, "sda")
    assert got.wwid == "t10.ATA     QEMU HARDDISK                           QM00001"  # trimmed ends only
    assert got.modalias == "scsi:t-0x00"
    assert got.bus_path == "/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0"
    assert got.io_size == 512


def test_usb_storage_is_usb_whatever_its_driver(tree: Tree) -> None:
    tree.scsi_disk("sdb", f"{PCI}/0000:00:14.0/usb2/2-1/2-1:1.0", 3, "usb-storage", "scsi")
    assert props(tree, "sdb").transport == "usb"


def test_firewire_is_ibp(tree: Tree) -> None:
    path = tree.scsi_disk("sdc", f"{PCI}/0000:00:1c.0/fw0", 4, "sbp2", "scsi")
    write(path / "device" / "ieee1394_id", "0x1")
    assert props(tree, "sdc").transport == "ibp"


def test_nvme_namespace(tree: Tree) -> None:
    ctrl = f"{PCI}/0000:00:05.0/nvme/nvme0"
    path = tree.disk(f"{ctrl}/nvme0n1", "nvme0n1", device=ctrl, io=(131072, 4096))
    write(path / "wwid", "eui.0011223344556677")
    write(path / "uuid", "6d3e5f04-08f1-4fa8-9c0c-5a9b6f2d0e11")
    write(path / "device" / "wwid", "not this one")
    got = props(tree, "nvme0n1")
    assert got.transport == "nvme"
    assert got.wwid == "eui.0011223344556677"  # the disk's own wwid before device/wwid
    assert got.uuid == "6d3e5f04-08f1-4fa8-9c0c-5a9b6f2d0e11"
    assert got.bus_path == "/pci0000:00/0000:00:05.0/nvme/nvme0/nvme0n1"
    assert got.io_size == 131072


def test_mmc_and_loop(tree: Tree) -> None:
    tree.disk(
        f"{PCI}/0000:00:1e.0/mmc_host/mmc0/mmc0:0001",
        "mmcblk0",
        device=f"{PCI}/0000:00:1e.0/mmc_host/mmc0/mmc0:0001",
    )
    tree.disk("devices/virtual", "loop0")
    assert props(tree, "mmcblk0").transport == "mmc"
    loop = props(tree, "loop0")
    assert (loop.transport, loop.bus_path, loop.sub_system, loop.io_size) == (
        "",
        "/virtual",
        "/sys/class/block",
        512,
    )


def test_secondary_disks_name_the_disk_of_a_partition(tree: Tree) -> None:
    vda = tree.disk(f"{PCI}/0000:00:04.0/virtio1", "vda", device=f"{PCI}/0000:00:04.0/virtio1")
    tree.partition(vda, "vda5")
    sdb = tree.scsi_disk("sdb", f"{PCI}/0000:00:1f.2/ata2", 1, "ahci", "scsi")
    dm = tree.disk("devices/virtual", "dm-0")
    for slave in (vda / "vda5", sdb):
        link(dm / "slaves" / slave.name, slave)
    assert props(tree, "dm-0").secondary_disks == ("sdb", "vda")
    assert props(tree, "dm-0").transport == ""


def test_a_vanished_disk_has_what_its_name_tells(tree: Tree) -> None:
    got = props(tree, "nvme1n1")
    assert (got.transport, got.bus_path, got.sub_system, got.io_size) == ("nvme", "", "", 512)


@pytest.mark.parametrize(
    ("optimal", "minimum", "expected"),
    [(0, 512, 512), (1048576, 4096, 1048576), (196608, 65536, 65536), (0, 0, 512), (3 * 512, 1536, 512)],
)
def test_io_size(optimal: int, minimum: int, expected: int) -> None:
    assert io_size_of(optimal, minimum) == expected


def test_bus_path_like_go_filepath_dir() -> None:
    assert bus_path_of("/virtual/block/loop0") == "/virtual"
    assert bus_path_of("/block/x") == "/"
    assert bus_path_of("x") == "."
