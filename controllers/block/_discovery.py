"""What disks and volumes the node has: block devices from sysfs, or disk image files given with ``--disk``.

Blocking (reads sysfs, partition tables and signatures): the discovery controller runs it in a worker thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from volumed.resources import DiscoveredVolumeSpec, DiskSpec
from volumed.storage.blockdev import Region, device_size, is_cdrom, list_block_devices
from volumed.storage.disklayout import SYSTEM_LABELS, discover_volumes, read_volume_table
from volumed.storage.gpt import CorruptTableError, GPTError, InvalidTableError, NoPartitionTableError
from volumed.storage.probe import probe_region

if TYPE_CHECKING:
    from collections.abc import Iterable

    from volumed.storage.gpt import PartitionTable
    from volumed.storage.probe import Signature


@dataclass
class Discovery:
    """Disks and volumes by resource id; ``unreadable`` disk images (path -> why) were skipped;
    ``invalid`` disks (path -> why) have a partition table nothing on them may be used by, either invalid
    or unreadable (both copies damaged); ``damaged`` are the latter, by disk id."""

    disks: dict[str, DiskSpec] = field(default_factory=dict)
    volumes: dict[str, DiscoveredVolumeSpec] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)
    damaged: dict[str, str] = field(default_factory=dict)


def image_disk_id(path: str) -> str:
    """The resource id of a disk image: its file name without dots (ids stay simple words)."""
    return Path(path).name.replace(".", "-")


#: The I/O size Talos gives a volume of a disk image (go-blockdevice's DefaultBlockSize for a regular file).
IMAGE_IO_SIZE = 512


def _volume(
    region: Region,
    signature: Signature | None,
    *,
    parent: str,
    index: int = 0,
    label: str = "",
    part_uuid: str = "",
    part_type: str = "",
    io_size: int = IMAGE_IO_SIZE,
    sector_size: int = IMAGE_IO_SIZE,
    device_path: str = "",
) -> DiscoveredVolumeSpec:
    """The DiscoveredVolume of ``region``: its place, and what its signature's superblock says (sizes as
    Talos' probe reports them); ``io_size``, ``sector_size`` and ``device_path`` are its disk's (see the
    spec; 512, 512 and "" for a disk image, go-blockdevice's values for a regular file)."""
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
        io_size=io_size,
        sector_size=sector_size,
        block_size=signature.block_size if signature is not None else 0,
        filesystem_block_size=signature.filesystem_block_size if signature is not None else 0,
        probed_size=signature.probed_size if signature is not None else 0,
        device_path=device_path,
    )


def _unusable(
    parent: str, number: int, label: str, error: str, *, part_uuid: str = "", part_type: str = ""
) -> DiscoveredVolumeSpec:
    """A partition of a disk whose table is invalid: named, so its volume's status can say why, but with
    no location (offset and size 0) and unprobed, so nothing opens it."""
    return DiscoveredVolumeSpec(
        dev_path=parent,
        parent=parent,
        size=0,
        partition_index=number,
        partition_label=label,
        partition_uuid=part_uuid,
        partition_type=part_type,
        error=error,
    )


def _invalid_table(disk_id: str, path: str, error: InvalidTableError, result: Discovery) -> None:
    result.invalid[path] = str(error)
    for part in error.partitions:
        result.volumes[f"{disk_id}p{part.number}"] = _unusable(
            path,
            part.number,
            part.name,
            str(error),
            part_uuid=str(part.unique_guid),
            part_type=str(part.type_guid),
        )


def _damaged_table(disk_id: str, path: str, error: CorruptTableError, result: Discovery) -> None:
    result.invalid[path] = str(error)
    result.damaged[disk_id] = path


def _unlocated_system_volumes(result: Discovery) -> None:
    """A system volume (located by its label alone) found on no disk while some disk's partition table
    cannot be read may be on that disk: it is listed there with the reason, so its status says why rather
    than "missing" (and nothing makes it anew elsewhere). Not probed, no location."""
    labels = {v.partition_label for v in result.volumes.values()}
    for disk_id, path in result.damaged.items():
        reason = result.invalid[path].removeprefix(f"{path}: ")
        for label in SYSTEM_LABELS:
            if label not in labels:
                result.volumes[f"{disk_id}-unread-{label.lower()}"] = _unusable(
                    path, 0, label, f"missing; disk {path} has an unreadable partition table: {reason}"
                )


def scan_image(path: str, result: Discovery) -> None:
    """A disk image: the disk, and each GPT partition as a region of the file.

    A damaged table: nothing on the disk is located until it is repaired. An invalid one (overlapping
    partitions, a volume label twice): its partitions are listed with the reason as their ``error``.
    Raises ``OSError`` (nothing added to ``result``) when the image cannot be read.
    """
    path = os.path.abspath(path)
    disk_id = image_disk_id(path)
    disk = DiskSpec(dev_path=path, size=device_size(path), image=True)
    try:
        found = discover_volumes(path)
    except InvalidTableError as error:
        found = []
        _invalid_table(disk_id, path, error, result)
    except NoPartitionTableError:
        found = []  # a blank disk
    except CorruptTableError as error:
        found = []  # nothing on this disk is located until its table is repaired
        _damaged_table(disk_id, path, error, result)
    except GPTError:
        found = []
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


def _table_error(disk: str) -> str:
    """Why the partitions the kernel shows for ``disk`` must not be used, or "" (see ``_check_table``)."""
    return _check_table(disk)[0]


def _check_table(disk: str) -> tuple[str, bool]:
    """Why the partitions the kernel shows for ``disk`` must not be used, or "" (the kernel accepts GPTs
    with overlapping partitions, so the table is checked here too), and whether the GPT is unreadable (both
    copies damaged). A disk without a GPT (blank, or MBR) is left to the kernel's view."""
    error, damaged, _ = _read_table(disk)
    return error, damaged


def _read_table(disk: str) -> tuple[str, bool, PartitionTable | None]:
    """`_check_table`'s answer, and the table when it is valid."""
    try:
        table = read_volume_table(disk)
    except InvalidTableError as error:
        return str(error), False, None
    except NoPartitionTableError:
        return "", False, None
    except CorruptTableError as error:
        return str(error), True, None
    except (GPTError, OSError):
        return "", False, None
    return "", False, table


def _gpt_entry(table: PartitionTable | None, number: int, start: int, size: int) -> tuple[str, str, str]:
    """The GPT name, unique GUID and type GUID of partition ``number`` covering ``size`` bytes from byte
    ``start``; empty strings when the table has none exactly there (a partition the kernel kept in use
    after its entry was removed or made smaller is not the one the table names now).

    sysfs holds none of the GUIDs (udev reads them with blkid; Talos with its own probe of the table), and the
    kernel names a partition (uevent ``PARTNAME``) only when it parsed the table itself: one it was told of
    by ``BLKPG`` (a partition added while another of the disk was in use) has no name in sysfs."""
    if table is None:
        return "", "", ""
    entry = next((p for p in table.partitions if p.number == number), None)
    if entry is None or (entry.offset(table.sector_size), entry.size(table.sector_size)) != (start, size):
        return "", "", ""
    return entry.name, str(entry.unique_guid), str(entry.type_guid)


def scan_block_devices(result: Discovery, *, sysfs: str = "/sys", dev_root: str = "/dev") -> None:
    """Every disk in sysfs with its partitions (read-only probing of each; none on an invalid or unreadable
    GPT: their volumes are listed with the reason, unlocated)."""
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
            io_size=disk.properties.io_size,
            cdrom=is_cdrom(disk.dev_path),
            modalias=disk.properties.modalias,
            wwid=disk.properties.wwid,
            uuid=disk.properties.uuid,
            bus_path=disk.properties.bus_path,
            sub_system=disk.properties.sub_system,
            secondary_disks=disk.properties.secondary_disks,
            symlinks=disk.properties.symlinks,
        )
        error, damaged, table = _read_table(disk.dev_path)
        if error:
            result.invalid[disk.dev_path] = error
        if damaged:
            result.damaged[disk.name] = disk.dev_path
        device_path = os.path.realpath(os.path.join(sysfs, "block", disk.name))  # Talos' Device.DevicePath
        io_size = disk.properties.io_size
        if not disk.partitions:
            whole = Region(disk.dev_path, 0, disk.size)
            result.volumes[disk.name] = (
                _unusable(disk.dev_path, 0, "", error).model_copy(update={"parent": ""})
                if error
                else _volume(
                    whole,
                    _probe(whole),
                    parent="",
                    io_size=io_size,
                    sector_size=disk.logical_sector_size,
                    device_path=device_path,
                )
            )
        for part in disk.partitions:
            if error:
                result.volumes[part.name] = _unusable(disk.dev_path, part.number, part.label or "", error)
                continue
            region = Region(part.dev_path, 0, part.size)
            gpt_name, part_uuid, part_type = _gpt_entry(table, part.number, part.start, part.size)
            result.volumes[part.name] = _volume(
                region,
                _probe(region),
                parent=disk.dev_path,
                index=part.number,
                label=part.label or gpt_name,
                part_uuid=part_uuid,
                part_type=part_type,
                io_size=io_size,
                sector_size=disk.logical_sector_size,
                device_path=os.path.join(device_path, part.name),
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
    _unlocated_system_volumes(result)
    return result
