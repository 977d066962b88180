"""The Disk facts on a real kernel (scenario ``tests/kernel/guest/disk_facts.py``): a guest with disks on
virtio-blk, NVMe, virtio-scsi and SATA (AHCI), a CD drive, and a dm mapping over a SATA partition. Each
expected value is Talos' recipe (go-blockdevice v2 ``GetProperties``/``getTransport``/``GetIOSize``, Talos'
secondaries) applied to the raw sysfs facts the guest read the plain way, or a value QEMU was given."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any

from tests.kernel._guest import SCSI_WWN, KernelMachine

if TYPE_CHECKING:
    from pathlib import Path

    from tests.kernel.assets import KernelAssets

NAA = "naa." + SCSI_WWN.removeprefix("0x")
# The kernel ignores the namespace IDs of QEMU's NVMe controller (NVME_QUIRK_BOGUS_NID), so its wwid is made
# of the PCI vendor, the serial and the model in hex, and the namespace: no uuid to see in this guest.
NVME_WWID = "nvme.1b36-{}-{}-00000001".format(b"volumed-nvme".hex(), b"QEMU NVMe Ctrl".hex())
SELECTORS = [
    f'disk.transport == "nvme" && disk.wwid == "{NVME_WWID}"',
    f'disk.wwid == "{NAA}"',
    'disk.transport == "sata" && disk.modalias == "scsi:t-0x00"',
    'disk.modalias.startsWith("virtio:d00000002")',
    "disk.secondary_disks.size() > 0",
    "disk.cdrom",
    'disk.transport == "scsi"',
]


def talos_bus_path(dev_link: str) -> str:
    return posixpath.dirname(posixpath.dirname(dev_link.removeprefix("../../devices")))


def talos_io_size(raw: dict[str, Any]) -> int:
    for size in (raw["optimal_io_size"], raw["minimum_io_size"]):
        if size > 0 and size & (size - 1) == 0:
            return int(size)
    return 512


def test_disk_facts_on_virtio_nvme_scsi_sata_cdrom_and_dm(
    kernel_assets: KernelAssets, tmp_path: Path
) -> None:
    machine = KernelMachine(
        kernel_assets, tmp_path / "facts", extra_disks=("nvme", "virtio-scsi", "ahci", "cdrom")
    )
    results = machine.boot("disk_facts", {"selectors": SELECTORS}).check().results
    disks: dict[str, dict[str, Any]] = results["disks"]
    raw: dict[str, dict[str, Any]] = results["raw"]

    # every disk: bus_path, sub_system, io_size, modalias as Talos computes them from the kernel's sysfs
    for name, disk in disks.items():
        facts = raw[name]
        assert disk["bus_path"] == talos_bus_path(facts["dev_link"]), name
        assert disk["sub_system"] == facts["subsystem"] == "/sys/class/block", name
        assert disk["io_size"] == talos_io_size(facts), name
        assert disk["modalias"] == facts["modalias"], name
        assert disk["wwid"] == (facts["wwid"] or facts["device_wwid"]), name
        assert disk["uuid"] == facts["uuid"], name

    vda = disks["vda"]
    assert vda["transport"] == "virtio"
    assert vda["modalias"].startswith("virtio:d00000002")  # virtio device 2: block
    assert vda["bus_path"].startswith("/pci0000:00/")

    nvme = disks["nvme0n1"]
    assert nvme["transport"] == "nvme"
    assert nvme["wwid"] == raw["nvme0n1"]["wwid"] == NVME_WWID  # the disk's own wwid
    assert nvme["uuid"] == ""

    scsi = next(name for name, facts in raw.items() if facts["proc_name"] == "virtio_scsi")
    assert disks[scsi]["transport"] == "virtio"
    assert disks[scsi]["wwid"] == NAA
    assert disks[scsi]["modalias"] == "scsi:t-0x00"

    sata = next(name for name, facts in raw.items() if facts["proc_name"] == "ahci" and name.startswith("sd"))
    assert disks[sata]["transport"] == "sata"
    assert disks[sata]["cdrom"] is False

    cdrom = next(name for name in disks if name.startswith("sr"))
    assert disks[cdrom]["cdrom"] is True
    assert disks[cdrom]["transport"] == "sata"  # the CD drive hangs off the same AHCI host

    dm = next(name for name in disks if name.startswith("dm-"))
    assert raw[dm]["slaves"] == [f"{sata}1"]
    assert disks[dm]["secondary_disks"] == [sata]  # the partition named by its disk, as Talos does
    assert disks[dm]["transport"] == ""

    assert results["selected"] == {
        SELECTORS[0]: ["nvme0n1"],
        SELECTORS[1]: [scsi],
        SELECTORS[2]: [sata],
        SELECTORS[3]: ["vda"],
        SELECTORS[4]: [dm],
        SELECTORS[5]: [cdrom],
        SELECTORS[6]: [],  # volumed said "scsi" for every SCSI host; Talos has no such transport
    }
