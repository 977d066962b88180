"""What disks and volumes the node has: block devices from sysfs, or disk image files given with ``--disk``.

Blocking (reads sysfs, partition tables and signatures): the discovery controller runs it in a worker thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from volumed.resources import DiscoveredVolumeSpec, DiskSpec
from volumed.storage.blockdev import Region, device_size, list_block_devices
from volumed.storage.gpt import GPTError, NoPartitionTableError, read_partition_table
from volumed.storage.probe import probe_region

if TYPE_CHECKING:
    from collections.abc import Iterable

    from volumed.storage.probe import Signature


@dataclass
class Discovery:
    """Disks and volumes by resource id."""

    disks: dict[str, DiskSpec] = field(default_factory=dict)
    volumes: dict[str, DiscoveredVolumeSpec] = field(default_factory=dict)


def image_disk_id(path: str) -> str:
    """The resource id of a disk image: its file name without dots (ids stay simple words)."""
    return Path(path).name.replace(".", "-")


def _signature(region: Region) -> Signature | None:
    try:
        return probe_region(region)
    except OSError:
        return None


def _volume(
    region: Region, *, parent: str, index: int = 0, label: str = "", part_uuid: str = "", part_type: str = ""
) -> DiscoveredVolumeSpec:
    signature = _signature(region)
    return DiscoveredVolumeSpec(
        dev_path=region.path,
        parent=parent,
        offset=region.offset,
        size=region.size,
        partition_index=index,
        partition_label=label,
        partition_uuid=part_uuid,
        partition_type=part_type,
        name=signature.type.value if signature is not None else "",
        label=(signature.label or "") if signature is not None else "",
        uuid=(signature.uuid or "") if signature is not None else "",
    )


def scan_image(path: str, result: Discovery) -> None:
    """A disk image: the disk, and each GPT partition as a region of the file."""
    path = os.path.abspath(path)
    disk_id = image_disk_id(path)
    size = device_size(path)
    result.disks[disk_id] = DiskSpec(dev_path=path, size=size, image=True)
    try:
        table = read_partition_table(path)
    except NoPartitionTableError:
        result.volumes[disk_id] = _volume(Region(path, 0, size), parent="")
        return
    except GPTError:
        return  # a damaged table: nothing on this disk is located until it is repaired
    sector = table.sector_size
    for part in table.partitions:
        region = Region(path, part.offset(sector), part.size(sector))
        result.volumes[f"{disk_id}p{part.number}"] = _volume(
            region,
            parent=path,
            index=part.number,
            label=part.label,
            part_uuid=str(part.unique_guid),
            part_type=str(part.type_guid),
        )


def scan_block_devices(result: Discovery, *, sysfs: str = "/sys", dev_root: str = "/dev") -> None:
    """Every disk in sysfs with its partitions (read-only probing of each)."""
    for disk in list_block_devices(sysfs=sysfs, dev_root=dev_root):
        if disk.backing_file is not None and disk.name.startswith("loop"):
            continue  # our own loop devices (activation, mounts) are not disks of the node
        result.disks[disk.name] = DiskSpec(
            dev_path=disk.dev_path,
            size=disk.size,
            model=disk.model or "",
            serial=disk.serial or "",
            transport=disk.transport or "",
            rotational=disk.rotational,
            readonly=disk.readonly,
            sector_size=disk.logical_sector_size,
        )
        if not disk.partitions:
            result.volumes[disk.name] = _volume(Region(disk.dev_path, 0, disk.size), parent="")
        for part in disk.partitions:
            result.volumes[part.name] = _volume(
                Region(part.dev_path, 0, part.size),
                parent=disk.dev_path,
                index=part.number,
                label=part.label or "",
            )


def discover(images: Iterable[str]) -> Discovery:
    """Disk images when any are given (development, CI), else the node's block devices."""
    result = Discovery()
    images = list(images)
    for image in images:
        scan_image(image, result)
    if not images:
        scan_block_devices(result)
    return result
