"""What a disk selector sees of a disk: the fields of Talos' ``disk`` CEL variable (block.DiskSpec)."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskDescription:
    """One disk as a disk selector sees it (``disk.size``, ``disk.transport``, ...).

    Field names are Talos' CEL names (the protobuf names of block.DiskSpec), so a selector written for Talos
    works unchanged. Sizes are bytes; ``transport`` is e.g. ``nvme``, ``sata``, ``virtio``, ``usb``.
    """

    dev_path: str
    size: int
    io_size: int = 0
    sector_size: int = 512
    readonly: bool = False
    cdrom: bool = False
    model: str = ""
    serial: str = ""
    modalias: str = ""
    wwid: str = ""
    uuid: str = ""
    bus_path: str = ""
    sub_system: str = ""
    transport: str = ""
    rotational: bool = False
    pretty_size: str = ""
    symlinks: tuple[str, ...] = ()
    secondary_disks: tuple[str, ...] = ()


DISK_FIELDS: frozenset[str] = frozenset(field.name for field in fields(DiskDescription))
