"""disk.symlinks and disk.serial as Talos v1.12 fills them, over /dev- and sysfs-shaped trees.

Expected values are worked out here from Talos' rules, not from volumed's code:
- symlinks (``controllers/block/symlinks.go`` SymlinksController, ``disks.go``): walk ``/dev/disk``; an entry
  ``os.Stat`` shows as a directory (links to directories too) is walked; any other entry whose ``Readlink``
  works and whose name does not start with ``.#`` is a link of the device ``filepath.Base(target)``; dangling
  links (Stat fails) and plain files (Readlink EINVAL) are skipped; a disk's paths are sorted.
- serial (go-blockdevice v2 ``GetProperties``, Talos ``serialFromUdevdHelpers``): ``device/serial`` trimmed;
  when empty, ``ata_id --export /dev/<disk>`` for transport ``ata`` (``scsi_id`` for ``scsi``), its
  ``ID_SERIAL`` else ``ID_SERIAL_SHORT``; other transports stay empty.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from tests.storage.blockdev.test_disk_props import PCI, Tree, write
from volumed.controllers.block._discovery import Discovery, scan_block_devices
from volumed.storage.blockdev import read_block_device, read_disk_properties
from volumed.storage.blockdev._serial import serial_from_export
from volumed.storage.blockdev._symlinks import disk_symlinks

if TYPE_CHECKING:
    from pathlib import Path


def symlink(at: Path, target: str) -> None:
    at.parent.mkdir(parents=True, exist_ok=True)
    at.symlink_to(target)


@pytest.fixture
def dev(tmp_path: Path) -> Path:
    """A /dev as udev lays it out for a SATA disk sda (one partition) and an NVMe namespace."""
    root = tmp_path / "dev"
    root.mkdir()
    for node in ("sda", "sda1", "nvme0n1"):
        (root / node).touch()
    disk = root / "disk"
    symlink(disk / "by-id" / "ata-QEMU_HARDDISK_QM00001", "../../sda")
    symlink(disk / "by-id" / "ata-QEMU_HARDDISK_QM00001-part1", "../../sda1")
    symlink(disk / "by-id" / "wwn-0x5000c500a0b1c2d3", "../../sda")
    symlink(disk / "by-id" / "nvme-eui.0011223344556677", "../../nvme0n1")
    symlink(disk / "by-id" / ".#ata-being-renamed", "../../sda")  # udev's temporary name
    symlink(disk / "by-id" / "ata-gone", "../../sdz")  # dangling: Stat fails
    (disk / "by-id" / "not-a-link").write_text("")  # Readlink: EINVAL
    symlink(disk / "by-path" / "pci-0000:00:1f.2-ata-1", "../../sda")
    symlink(disk / "by-path" / "pci-0000:00:1f.2-ata-1.0", "../../sda")
    symlink(disk / "by-diskseq" / "1", "../../sda")
    symlink(disk / "by-partlabel" / "STATE", "../../sda1")
    symlink(disk / "by-alias", "by-path")  # a link to a directory: Stat says directory, it is walked
    symlink(disk / "by-loop" / "up", "../..")  # a link to an ancestor: walked once, not forever
    return root


SDA_LINKS = (
    "/dev/disk/by-alias/pci-0000:00:1f.2-ata-1",
    "/dev/disk/by-alias/pci-0000:00:1f.2-ata-1.0",
    "/dev/disk/by-diskseq/1",
    "/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001",
    "/dev/disk/by-id/wwn-0x5000c500a0b1c2d3",
    "/dev/disk/by-path/pci-0000:00:1f.2-ata-1",
    "/dev/disk/by-path/pci-0000:00:1f.2-ata-1.0",
)


def test_symlinks_of_each_device(dev: Path) -> None:
    # by-loop/up leads to /dev: its sda is a plain file (Readlink EINVAL) and its disk is the directory being
    # walked, where the walk stops (Talos would walk /dev/disk/by-loop/up/disk/... until stat fails and the
    # controller errors).
    assert disk_symlinks("sda", dev_root=str(dev)) == SDA_LINKS
    assert disk_symlinks("sda1", dev_root=str(dev)) == (
        "/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001-part1",
        "/dev/disk/by-partlabel/STATE",
    )
    assert disk_symlinks("nvme0n1", dev_root=str(dev)) == ("/dev/disk/by-id/nvme-eui.0011223344556677",)
    assert disk_symlinks("sdb", dev_root=str(dev)) == ()


def test_no_dev_disk_no_symlinks(tmp_path: Path) -> None:
    assert disk_symlinks("sda", dev_root=str(tmp_path)) == ()


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path / "sys")


def fake_helper(udev: Path, name: str, output: str, *, status: int = 0) -> Path:
    """A udev helper that records its arguments and prints ``output``."""
    called = udev / f"{name}.args"
    script = udev / name
    udev.mkdir(exist_ok=True)
    script.write_text(f'#!/bin/sh\necho "$@" > {called}\nprintf "%b" "{output}"\nexit {status}\n')
    script.chmod(0o755)
    return called


def test_serial_is_device_serial_trimmed(tree: Tree, tmp_path: Path) -> None:
    ctrl = f"{PCI}/0000:00:05.0/nvme/nvme0"
    path = tree.disk(f"{ctrl}/nvme0n1", "nvme0n1", device=ctrl)
    write(path / "device" / "serial", "  volumed-nvme   ")
    assert (
        read_disk_properties("nvme0n1", sysfs=str(tree.root), udev_dir=str(tmp_path)).serial == "volumed-nvme"
    )


def test_a_virtio_blk_disk_has_no_serial(tree: Tree, tmp_path: Path) -> None:
    # virtio_blk puts its serial on the disk (/sys/block/vda/serial), go-blockdevice reads device/serial, and
    # Talos runs no helper for transport virtio: disk.serial is empty (volumed read the disk's own attribute).
    path = tree.disk(f"{PCI}/0000:00:04.0/virtio1", "vda", device=f"{PCI}/0000:00:04.0/virtio1")
    write(path / "serial", "volumed-virtio")
    assert read_disk_properties("vda", sysfs=str(tree.root), udev_dir=str(tmp_path)).serial == ""
    assert read_block_device("vda", sysfs=str(tree.root)).serial is None


def test_an_ata_disk_without_device_serial_asks_ata_id(tree: Tree, tmp_path: Path) -> None:
    tree.scsi_disk("sda", f"{PCI}/0000:00:01.1/ata1", 0, "ata_piix", "scsi")
    udev = tmp_path / "udev"
    called = fake_helper(
        udev, "ata_id", "ID_ATA=1\\nID_SERIAL=QEMU_HARDDISK_QM00001\\nID_SERIAL_SHORT=QM00001\\n"
    )
    got = read_disk_properties("sda", sysfs=str(tree.root), dev_root="/devroot", udev_dir=str(udev))
    assert (got.transport, got.serial) == ("ata", "QEMU_HARDDISK_QM00001")
    assert called.read_text() == "--export /devroot/sda\n"


def test_ata_id_short_serial_and_failure(tree: Tree, tmp_path: Path) -> None:
    tree.scsi_disk("sda", f"{PCI}/0000:00:01.1/ata1", 0, "ata_piix", "scsi")
    udev = tmp_path / "udev"
    fake_helper(udev, "ata_id", "ID_SERIAL=\\nID_SERIAL_SHORT=QM00001\\n")
    assert read_disk_properties("sda", sysfs=str(tree.root), udev_dir=str(udev)).serial == "QM00001"
    fake_helper(udev, "ata_id", "ID_SERIAL=QEMU\\n", status=1)  # a failing helper: Talos keeps ""
    assert read_disk_properties("sda", sysfs=str(tree.root), udev_dir=str(udev)).serial == ""
    os.unlink(udev / "ata_id")  # no helper at all
    assert read_disk_properties("sda", sysfs=str(tree.root), udev_dir=str(udev)).serial == ""


def test_a_sata_disk_asks_no_helper(tree: Tree, tmp_path: Path) -> None:
    # transport "sata" (ahci) is not "ata": Talos runs no helper and the serial stays empty.
    tree.scsi_disk("sda", f"{PCI}/0000:00:1f.2/ata1", 0, "ahci", "scsi")
    udev = tmp_path / "udev"
    called = fake_helper(udev, "ata_id", "ID_SERIAL=QEMU_HARDDISK_QM00001\\n")
    got = read_disk_properties("sda", sysfs=str(tree.root), udev_dir=str(udev))
    assert (got.transport, got.serial) == ("sata", "")
    assert not called.exists()


@pytest.mark.parametrize(
    ("output", "serial"),
    [
        ("ID_SERIAL=a\nID_SERIAL_SHORT=b\n", "a"),
        ("ID_SERIAL_SHORT=b\n", "b"),
        ("ID_SERIAL=\nID_SERIAL_SHORT=b\n", "b"),  # cmp.Or: the first non-empty
        ("# ID_SERIAL=c\n\n ID_SERIAL = d \n", "d"),  # comment and blank skipped, key and value trimmed
        ("ID_SERIAL\nID_SERIAL_SHORT=e\r\n", "e"),  # no "=": skipped; Go's line scanner drops the CR
        ("ID_SERIAL=x\nID_SERIAL=y\n", "y"),  # a later key wins (a Go map)
        ("", ""),
    ],
)
def test_serial_from_udev_export(output: str, serial: str) -> None:
    assert serial_from_export(output) == serial


def test_discovery_publishes_symlinks_and_serial(tree: Tree, dev: Path) -> None:
    path = tree.scsi_disk("sda", f"{PCI}/0000:00:1f.2/ata1", 0, "ahci", "scsi")
    write(path / "device" / "serial", "S-ATA-1")
    result = Discovery()
    scan_block_devices(result, sysfs=str(tree.root), dev_root=str(dev))
    disk = result.disks["sda"]
    assert disk.serial == "S-ATA-1"
    assert disk.symlinks == SDA_LINKS
