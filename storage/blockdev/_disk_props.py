"""The facts of a disk Talos' CEL ``disk.*`` fields hold, read from sysfs the way Talos v1.12 reads them.

Sources: Talos ``controllers/block/disks.go`` and ``devices.go``, go-blockdevice v2
``block/device_linux.go``. In the disk's sysfs directory: ``modalias`` is ``device/modalias``; ``wwid`` is
``wwid``, else ``device/wwid``; ``uuid`` is ``uuid``; ``bus_path`` is where the directory lives under
``/sys/devices`` less its last two parts; ``sub_system`` is where the ``subsystem`` link leads
(``/sys/class/block``); ``io_size`` the optimal, else minimum I/O size that is a power of two, else 512;
``secondary_disks`` the ``slaves`` of the disk, a partition named by its disk; the transport from the
device name, else from the SCSI host the device hangs off. ``cdrom`` is an ioctl (CDROM_GET_CAPABILITY) on
the device node, as in go-blockdevice. ``serial`` follows Talos' rules in ``_serial`` and ``symlinks`` its
SymlinksController's walk of ``/dev/disk`` in ``_symlinks``.

The string logic is pure (``bus_path_of``, ``io_size_of``, ``transport_of``); ``read_disk_properties`` reads
a sysfs tree rooted anywhere (tests build one in a temporary directory).
"""

from __future__ import annotations

import fcntl
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Final, final

from ._serial import UDEV_DIR, read_serial
from ._symlinks import disk_symlinks

#: go-blockdevice's DefaultBlockSize: the I/O size when the kernel reports no usable one.
DEFAULT_IO_SIZE: Final = 512
_CDROM_GET_CAPABILITY: Final = 0x5331


@final
@dataclass(frozen=True)
class DiskProperties:
    """What Talos' Disk resource holds of a disk beyond its size, model and flags (see module doc)."""

    modalias: str = ""
    wwid: str = ""
    uuid: str = ""
    bus_path: str = ""
    sub_system: str = ""
    transport: str = ""
    io_size: int = DEFAULT_IO_SIZE
    secondary_disks: tuple[str, ...] = ()
    serial: str = ""
    symlinks: tuple[str, ...] = ()


@final
@dataclass(frozen=True)
class ScsiHostFacts:
    """What sysfs says of the SCSI host a device hangs off (all false/empty when it hangs off none).

    Attributes:
        classes: the ``/sys/class/<kind>_host/hostN`` directories that exist, by kind (``sas``, ``fc``,
            ``iscsi``, ``scsi``).
        ieee1394: the SCSI device has an ``ieee1394_id`` attribute (FireWire).
        device_link: where ``/sys/bus/scsi/devices/<H:C:T:L>`` leads.
        proc_name: the SCSI host's driver (``/sys/class/scsi_host/hostN/proc_name``): ``ahci``, ``ata_piix``,
            ``virtio_scsi``, ...
    """

    classes: frozenset[str] = frozenset()
    ieee1394: bool = False
    device_link: str = ""
    proc_name: str = ""


def _go_dir(path: str) -> str:
    """Go's ``filepath.Dir``: all but the last element, cleaned ("." when there is no separator)."""
    head = path[: path.rfind("/") + 1]
    if not head:
        return "."
    cleaned = posixpath.normpath(head)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def bus_path_of(device_path: str) -> str:
    """``bus_path`` from where the disk lives under ``/sys/devices``:
    ``/pci0000:00/0000:00:04.0/virtio1/block/vda`` gives ``/pci0000:00/0000:00:04.0/virtio1`` (Talos: the
    ``/sys/dev/block/MAJ:MIN`` link without ``../../devices``, less its last two parts)."""
    return _go_dir(_go_dir(device_path))


def _power_of_two(size: int) -> bool:
    return size > 0 and size & (size - 1) == 0


def io_size_of(optimal: int, minimum: int) -> int:
    """``io_size``: the first of the optimal and minimum I/O sizes that is a power of two, else 512.

    go-blockdevice asks BLKIOOPT, BLKIOMIN, then BLKBSZGET; the first two are these sysfs values, and a
    kernel's minimum I/O size is never 0, so the third is not asked here.
    """
    return next((size for size in (optimal, minimum) if _power_of_two(size)), DEFAULT_IO_SIZE)


def scsi_host_of(device_link: str) -> int | None:
    """The SCSI host number of a disk's ``device`` link (``.../0:0:0:0`` gives 0); None for a device that is
    not a SCSI device (``virtio1``)."""
    host, sep, _ = posixpath.basename(device_link).partition(":")
    if not sep:
        return None
    try:
        return int(host)
    except ValueError:
        return None


def transport_of(name: str, host: ScsiHostFacts | None) -> str:
    """The transport Talos names: by device name (nvme, virtio, mmc), else by the SCSI host (``host``;
    None when the disk is not a SCSI device): sas, fc, ibp, iscsi, usb, then the SCSI driver: sata (ahci),
    ata (another ATA driver), virtio (virtio_scsi); "" for anything else (loop, dm, zram, ...)."""
    if name.startswith("nvme"):
        return "nvme"
    if name.startswith("vd"):
        return "virtio"
    if name.startswith("mmcblk"):
        return "mmc"
    if host is None:
        return ""
    if "sas" in host.classes:
        return "sas"
    if "fc" in host.classes:
        return "fc"
    if host.ieee1394:
        return "ibp"
    if "iscsi" in host.classes:
        return "iscsi"
    if "usb" in host.device_link:
        return "usb"
    if "scsi" in host.classes:
        if host.proc_name in ("ahci", "sata"):
            return "sata"
        if "ata" in host.proc_name:
            return "ata"
        if host.proc_name == "virtio_scsi":
            return "virtio"
    return ""


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _read_int(path: Path) -> int:
    try:
        return int(_read(path) or "0")
    except ValueError:
        return 0


def _readlink(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def _host_facts(sysfs: Path, sys_path: Path) -> ScsiHostFacts | None:
    device_link = _readlink(sys_path / "device")
    host = scsi_host_of(device_link) if device_link else None
    if host is None:
        return None
    scsi_device = sysfs / "bus" / "scsi" / "devices" / posixpath.basename(device_link)
    classes = frozenset(
        kind
        for kind in ("sas", "fc", "iscsi", "scsi")
        if (sysfs / "class" / f"{kind}_host" / f"host{host}").is_dir()
    )
    return ScsiHostFacts(
        classes=classes,
        ieee1394=os.path.lexists(scsi_device / "ieee1394_id"),
        device_link=_readlink(scsi_device),
        proc_name=_read(sysfs / "class" / "scsi_host" / f"host{host}" / "proc_name"),
    )


def _sub_system(sysfs: Path, sys_path: Path) -> str:
    """Where ``subsystem`` leads, as an absolute path; under a sysfs tree rooted elsewhere (tests), named as
    if that tree were ``/sys``."""
    link = sys_path / "subsystem"
    if not os.path.lexists(link):
        return ""
    real = os.path.realpath(link)
    root = os.path.realpath(sysfs)
    if root != "/sys" and (real == root or real.startswith(root + "/")):
        return "/sys" + real[len(root) :]
    return real


def _secondary_disks(sysfs: Path, sys_path: Path) -> tuple[str, ...]:
    """The ``slaves`` of the disk (sorted, as Go's ReadDir), each partition replaced by its disk's name."""
    try:
        names = sorted(entry.name for entry in os.scandir(sys_path / "slaves"))
    except OSError:
        return ()
    disks: list[str] = []
    for name in names:
        entry = sysfs / "class" / "block" / name
        if (entry / "partition").exists():
            name = posixpath.basename(posixpath.dirname(os.path.realpath(entry)))
        disks.append(name)
    return tuple(disks)


def _device_path(sysfs: Path, sys_path: Path) -> str:
    """Where the disk lives under ``<sysfs>/devices``, from ``/``; "" when it is not there."""
    try:
        real = os.path.realpath(sys_path, strict=True)
    except OSError:
        return ""
    devices = os.path.realpath(sysfs / "devices")
    return real[len(devices) :] if real.startswith(devices + "/") else ""


def read_disk_properties(
    name: str, *, sysfs: str = "/sys", dev_root: str = "/dev", udev_dir: str = UDEV_DIR
) -> DiskProperties:
    """The Talos facts of the disk ``name`` (``vda``, ``sda``, ``nvme0n1``) from the sysfs tree at ``sysfs``,
    its links from ``<dev_root>/disk``, its serial from udev's helpers in ``udev_dir`` where Talos asks them.

    Talos reads the directory through ``/sys/dev/block/MAJ:MIN``; this reads the same directory through
    ``/sys/block/<name>`` (both links lead there). A disk that vanished has only what its name tells.
    """
    root = Path(sysfs)
    sys_path = root / "block" / name
    device_path = _device_path(root, sys_path)
    if not device_path:
        return DiskProperties(transport=transport_of(name, None))
    transport = transport_of(posixpath.basename(device_path), _host_facts(root, sys_path))
    return DiskProperties(
        modalias=_read(sys_path / "device" / "modalias"),
        wwid=_read(sys_path / "wwid") or _read(sys_path / "device" / "wwid"),
        uuid=_read(sys_path / "uuid"),
        bus_path=bus_path_of(device_path),
        sub_system=_sub_system(root, sys_path),
        transport=transport,
        io_size=io_size_of(
            _read_int(sys_path / "queue" / "optimal_io_size"),
            _read_int(sys_path / "queue" / "minimum_io_size"),
        ),
        secondary_disks=_secondary_disks(root, sys_path),
        serial=read_serial(str(sys_path), transport, os.path.join(dev_root, name), udev_dir=udev_dir),
        symlinks=disk_symlinks(name, dev_root=dev_root),
    )


def is_cdrom(dev_path: str) -> bool:
    """The device answers CDROM_GET_CAPABILITY (go-blockdevice's IsCD); false when it cannot be opened."""
    try:
        fd = os.open(dev_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.ioctl(fd, _CDROM_GET_CAPABILITY, 0)
    except OSError:
        return False  # ENOTTY: not a CD drive
    finally:
        os.close(fd)
    return True
