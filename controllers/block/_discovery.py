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
from volumed.storage.disklayout import discover_volumes
from volumed.storage.gpt import GPTError
from volumed.storage.probe import probe_region

if TYPE_CHECKING:
    from collections.abc import Iterable

    from volumed.storage.probe import Signature


@dataclass
class Discovery:
    """Disks and volumes by resource id; ``unreadable`` disk images (path -> why) were skipped."""

    disks: dict[str, DiskSpec] = field(default_factory=dict)
    volumes: dict[str, DiscoveredVolumeSpec] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)


def image_disk_id(path: str) -> str:
    """The resource id of a disk image: its file name without dots (ids stay simple words)."""
    return Path(path).name.replace(".", "-")


def _volume(
    region: Region,
    signature: Signature | None,
    *,
    parent: str,
    index: int = 0,
    label: str = "",
    part_uuid: str = "",
    part_type: str = "",
) -> DiscoveredVolumeSpec:
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
    """A disk image: the disk, and each GPT partition as a region of the file (a damaged table: nothing).

    Raises ``OSError`` (nothing added to ``result``) when the image cannot be read.
    """
    path = os.path.abspath(path)
    disk_id = image_disk_id(path)
    disk = DiskSpec(dev_path=path, size=device_size(path), image=True)
    try:
        found = discover_volumes(path)
    except GPTError:
        found = []  # nothing on this disk is located until its table is repaired
    result.disks[disk_id] = disk
    if len(found) == 1:
        result.volumes[disk_id] = _volume(found[0].region, found[0].signature, parent="")
    for volume in found[1:]:
        result.volumes[f"{disk_id}p{volume.partition_number}"] = _volume(
            volume.region,
            volume.signature,
            parent=path,
            index=volume.partition_number or 0,
            label=volume.partition_label or "",
            part_uuid=str(volume.partition_uuid or ""),
            part_type=str(volume.partition_type or ""),
        )


def _probe(region: Region) -> Signature | None:
    try:
        return probe_region(region)
    except OSError:
        return None  # unreadable (e.g. a CD drive without a disc): nothing to locate there


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
            whole = Region(disk.dev_path, 0, disk.size)
            result.volumes[disk.name] = _volume(whole, _probe(whole), parent="")
        for part in disk.partitions:
            region = Region(part.dev_path, 0, part.size)
            result.volumes[part.name] = _volume(
                region,
                _probe(region),
                parent=disk.dev_path,
                index=part.number,
                label=part.label or "",
            )


def discover(images: Iterable[str]) -> Discovery:
    """Disk images when any are given (development, CI), else the node's block devices.

    An image that cannot be read is skipped and listed in ``unreadable``; the others are still discovered.
    """
    result = Discovery()
    images = list(images)
    for image in images:
        try:
            scan_image(image, result)
        except OSError as exc:
            result.unreadable[os.path.abspath(image)] = str(exc)  # one bad disk hides none of the others
    if not images:
        scan_block_devices(result)
    return result
