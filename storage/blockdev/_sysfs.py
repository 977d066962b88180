"""Discovery of block devices and their partitions from sysfs (``/sys/block``), without udev."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import final

from ._disk_props import DiskProperties, read_disk_properties

_SYSFS_SECTOR = 512  # sysfs reports sizes and starts in 512-byte units regardless of the device


@final
@dataclass(frozen=True)
class PartitionInfo:
    """A partition as the kernel sees it. ``label`` is the GPT name (uevent PARTNAME) and ``uuid`` the
    partition GUID (uevent PARTUUID, on kernels that report it), if any."""

    name: str
    number: int
    start: int
    size: int
    label: str | None
    dev_path: str
    uuid: str | None = None


@final
@dataclass(frozen=True)
class BlockDeviceInfo:
    """A whole block device (a disk) as sysfs describes it; sizes and starts are in bytes.

    For a loop device, ``backing_file`` is the file it maps, from ``backing_offset`` for
    ``backing_size_limit`` bytes (0 = to the end of the file). ``properties`` are the facts Talos' Disk
    holds beyond these (``transport`` and ``wwid`` are theirs too, None when empty).
    """

    name: str
    dev_path: str
    size: int
    logical_sector_size: int
    model: str | None
    serial: str | None
    wwid: str | None
    transport: str | None
    rotational: bool
    readonly: bool
    removable: bool
    backing_file: str | None
    backing_offset: int
    backing_size_limit: int
    partitions: tuple[PartitionInfo, ...]
    properties: DiskProperties = field(default_factory=DiskProperties)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _read_int(path: Path, default: int = 0) -> int:
    text = _read(path)
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _uevent(path: Path) -> dict[str, str]:
    text = _read(path / "uevent") or ""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k: v for k, v in pairs}


def _partitions(sys_dir: Path, dev_root: str) -> tuple[PartitionInfo, ...]:
    parts: list[PartitionInfo] = []
    for child in sorted(sys_dir.iterdir()):
        if not (child / "partition").exists():
            continue
        uevent = _uevent(child)
        parts.append(
            PartitionInfo(
                name=child.name,
                number=_read_int(child / "partition"),
                start=_read_int(child / "start") * _SYSFS_SECTOR,
                size=_read_int(child / "size") * _SYSFS_SECTOR,
                label=uevent.get("PARTNAME"),
                dev_path=os.path.join(dev_root, child.name),
                uuid=uevent.get("PARTUUID"),
            )
        )
    return tuple(sorted(parts, key=lambda p: p.number))


def read_block_device(name: str, *, sysfs: str = "/sys", dev_root: str = "/dev") -> BlockDeviceInfo:
    """One disk by kernel name (``sda``, ``loop3``, ``nvme0n1``)."""
    sys_dir = Path(sysfs) / "block" / name
    if not sys_dir.is_dir():
        raise FileNotFoundError(f"no block device {name!r} in {sys_dir.parent}")
    device = sys_dir / "device"
    properties = read_disk_properties(name, sysfs=sysfs, dev_root=dev_root)
    return BlockDeviceInfo(
        name=name,
        dev_path=os.path.join(dev_root, name),
        size=_read_int(sys_dir / "size") * _SYSFS_SECTOR,
        logical_sector_size=_read_int(sys_dir / "queue" / "logical_block_size", 512),
        model=_read(device / "model"),
        serial=properties.serial or None,
        wwid=properties.wwid or None,
        transport=properties.transport or None,
        rotational=_read_int(sys_dir / "queue" / "rotational") == 1,
        readonly=_read_int(sys_dir / "ro") == 1,
        removable=_read_int(sys_dir / "removable") == 1,
        backing_file=_read(sys_dir / "loop" / "backing_file"),
        backing_offset=_read_int(sys_dir / "loop" / "offset"),
        backing_size_limit=_read_int(sys_dir / "loop" / "sizelimit"),
        partitions=_partitions(sys_dir, dev_root),
        properties=properties,
    )


def list_block_devices(
    *, sysfs: str = "/sys", dev_root: str = "/dev", include_empty: bool = False
) -> list[BlockDeviceInfo]:
    """Every disk in ``/sys/block``, sorted by name; zero-sized ones (idle loop devices) only if asked."""
    root = Path(sysfs) / "block"
    disks: list[BlockDeviceInfo] = []
    for entry in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            info = read_block_device(entry.name, sysfs=sysfs, dev_root=dev_root)
        except FileNotFoundError:
            continue  # vanished while listing
        if info.size or include_empty:
            disks.append(info)
    return disks
