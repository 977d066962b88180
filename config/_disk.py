"""What a disk selector sees of a disk: the fields of Talos' ``disk`` CEL variable (block.DiskSpec)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ._pretty_size import pretty_size


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskDescription:
    """One disk as a disk selector sees it (``disk.size``, ``disk.transport``, ...).

    Field names are Talos' CEL names (the protobuf names of block.DiskSpec), so a selector written for Talos
    works unchanged. Sizes are bytes; ``transport`` is e.g. ``nvme``, ``sata``, ``virtio``, ``usb``;
    ``pretty_size`` is Talos' rendering of ``size`` (`pretty_size`) unless given.
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

    def __post_init__(self) -> None:
        if not self.pretty_size:  # Talos fills it from the size (humanize.Bytes)
            object.__setattr__(self, "pretty_size", pretty_size(self.size))


DISK_FIELDS: frozenset[str] = frozenset(field.name for field in fields(DiskDescription))
