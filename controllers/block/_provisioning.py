"""Provisioning: make a volume's partition on a disk chosen by its CEL selector, as Talos does (blocking).

Facts from Talos (``internal/app/machined/pkg/controllers/block/internal/volumes``: ``disk.go``,
``partition.go``; ``controllers/block/system_disk.go``): ``system_disk`` is the disk that holds META; a
disk with nothing on it gets a new GPT; the new partition is ``maxSize`` (a percentage: of the largest free
gap) or, without one, all of the largest free gap, whatever ``grow`` says; a disk with less than ``minSize``
free is passed over.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from volumed.config import DiskDescription, SelectorError, compile_selector
from volumed.storage.blockdev import Region, is_block_device
from volumed.storage.disklayout import largest_allocatable, read_volume_table
from volumed.storage.gpt import (
    LINUX_FILESYSTEM_DATA,
    GPTError,
    LayoutError,
    NoPartitionTableError,
    PartitionTable,
    disk_holders,
    kernel_partitions,
    new_disk_table,
    partition_held,
    tell_kernel,
    whole_disk_users,
    write_new_disk_table,
    write_partition_table,
)
from volumed.storage.probe import ContentKind, examine_region, wipe_region

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from volumed.config import DiskSelector
    from volumed.resources import DiscoveredVolumeSpec, DiskSpec, ProvisioningConfigSpec

#: The disk that holds the partition labelled META is the system disk (Talos' SystemDisk controller).
META_LABEL = "META"


class ProvisioningError(Exception):
    """No disk matches the selector or has room; retried when disks change."""


def _description(disk: DiskSpec) -> DiskDescription:
    return DiskDescription(
        dev_path=disk.dev_path,
        size=disk.size,
        sector_size=disk.sector_size,
        readonly=disk.readonly,
        model=disk.model,
        serial=disk.serial,
        transport=disk.transport,
        rotational=disk.rotational,
        symlinks=disk.symlinks,
        io_size=disk.io_size,
        cdrom=disk.cdrom,
        modalias=disk.modalias,
        wwid=disk.wwid,
        uuid=disk.uuid,
        bus_path=disk.bus_path,
        sub_system=disk.sub_system,
        secondary_disks=disk.secondary_disks,
    )


def system_disk_of(discovered: Sequence[DiscoveredVolumeSpec]) -> str | None:
    """The disk CEL's ``system_disk`` means: the one holding the META partition volumed reads (the first
    usable META discovered, as MetaStore picks it), so STATE is made where its key's node UUID comes from.

    With two disks holding META, any disk with a META was "the system disk": STATE could be made on one
    disk keyed with the other's node UUID. (Talos passes over loop devices there; volumed runs on loop
    devices and image files, so it does not.)
    """
    meta = meta_volume(discovered)
    return meta.parent or meta.dev_path if meta is not None else None


def meta_volume(discovered: Sequence[DiscoveredVolumeSpec]) -> DiscoveredVolumeSpec | None:
    """The META partition volumed reads: the first one discovered on a usable partition table."""
    return next((v for v in discovered if v.partition_label == META_LABEL and not v.error), None)


def size_for(provisioning: ProvisioningConfigSpec, available: int) -> int | None:
    """The new partition's size in a disk with ``available`` allocatable bytes; None when ``minSize`` (at
    least one byte) does not fit.

    Talos' ``CreatePartition``: ``maxSize`` (a percentage resolved against ``available``) when it is set and
    smaller than ``available``, else all of ``available``. ``grow`` plays no part.
    """
    if available < max(provisioning.min_size, 1):
        return None
    maximum = provisioning.resolve_max_size(available)
    if maximum <= 0 or maximum >= available:
        return available
    return maximum


def _find_existing(
    label: str, disks: Sequence[DiskSpec], selects: Callable[[DiskSpec], bool]
) -> tuple[Region, int] | None:
    """The partition an earlier attempt made for ``label``, if any.

    A disk the volume's selector picks whose table cannot be read (or is invalid) may hold that partition:
    making the volume again on another disk would hide the first one, with its data, behind an empty twin.
    So provisioning waits for that table to be repaired; a disk with no GPT at all holds no partition and is
    passed over, and so is a disk the selector does not pick (an earlier attempt never made it there: an
    unreadable USB stick no longer holds back STATE and EPHEMERAL on the system disk).

    Raises:
        ProvisioningError: a selected disk's table cannot be read or is invalid (the message names it).
    """
    for disk in disks:
        try:
            table = read_volume_table(disk.dev_path)
        except (NoPartitionTableError, OSError):
            continue  # no GPT, or a disk that cannot be read at all (no medium): no partition of ours
        except GPTError as error:
            if not selects(disk):
                continue
            problem = str(error) if disk.dev_path in str(error) else f"{disk.dev_path}: {error}"
            raise ProvisioningError(
                f"cannot provision volume {label}: disk {disk.dev_path} may hold it but its partition table"
                f" cannot be used ({problem}); repair that table first"
            ) from None
        partition = table.find(label)
        if partition is not None:
            ss = table.sector_size
            region = Region(disk.dev_path, partition.offset(ss), partition.size(ss))
            if is_block_device(disk.dev_path):
                had = kernel_partitions(disk.dev_path).get(partition.number)
                if had != (region.offset, region.size):  # the attempt was cut before it told the kernel,
                    tell_kernel(disk.dev_path, table)  # or the kernel refused (a stale partition in use)
            return region, partition.number  # wiped before its table was written
    return None


def _kernel_clash(region: Region, in_kernel: dict[int, tuple[int, int]], holders: Sequence[str]) -> str:
    """Why the new partition's bytes are not free in the kernel's view of its disk, or "".

    The kernel keeps a partition in use when its GPT entry is removed or made smaller (the re-read is
    refused): its filesystem still covers those bytes, which the GPT shows free. Wiping them, or telling the
    kernel of a table that shrinks it, cut a mounted filesystem (I/O errors, e2fsck unable to proceed). A
    mapping over the disk itself (``holders``) may cover any of its bytes.
    """
    if holders:
        return f"{region.path}: the disk itself is held by {', '.join(holders)}; nothing was written"
    end = region.offset + region.size
    for number, (start, size) in sorted(in_kernel.items()):
        if start < end and region.offset < start + size:
            return (
                f"{region.path}: the new partition ({region.size} bytes from byte {region.offset}) would"
                f" overlap partition {number} as the kernel has it ({size} bytes from byte {start}; its"
                " table entry was changed while it was in use); nothing was written"
            )
    return ""


def _selects(selector: DiskSelector, label: str, disk: DiskSpec, system_disk: str | None) -> bool:
    """The selector's verdict on ``disk``; one that fails to evaluate is this volume's error, no other's."""
    try:
        return selector.matches(_description(disk), system_disk=disk.dev_path == system_disk)
    except SelectorError as error:
        problem = str(error).removeprefix("disk selector: ")
        raise ProvisioningError(
            f"cannot provision volume {label}: its diskSelector failed to evaluate on disk {disk.dev_path}:"
            f" {problem}"
        ) from None


def _table_for(disk: DiskSpec, reasons: list[str]) -> PartitionTable | None:
    """The disk's table to add a partition to: its GPT, or a new empty one when the disk is blank.

    A disk with no GPT gets one only when it is provably blank (`examine_region`: no signature, zero at every
    sample point); one with a filesystem, another table or unknown data is never touched. A disk that is
    passed over gets its reason appended to ``reasons``.
    """
    path = disk.dev_path
    try:
        return read_volume_table(path)
    except NoPartitionTableError:
        pass
    except GPTError as error:
        reasons.append(str(error) if path in str(error) else f"{path}: {error}")
        return None  # an invalid table (overlaps, a volume label twice) gets no new partition
    try:
        content = examine_region(Region.whole(path))
    except OSError as error:
        reasons.append(f"{path}: no GPT, and it cannot be probed ({error})")
        return None
    if content.kind is not ContentKind.BLANK:
        reasons.append(f"{path}: no GPT and not blank (holds {content.describe()})")
        return None
    try:
        return new_disk_table(path, sector_size=disk.sector_size or None)
    except LayoutError as error:
        reasons.append(f"{path}: {error}")
        return None


def provision_partition(
    label: str,
    provisioning: ProvisioningConfigSpec,
    disks: Sequence[DiskSpec],
    *,
    system_disk: str | None = None,
) -> tuple[Region, int]:
    """Add a partition named ``label`` on the first matching disk with room; returns its region and number.

    A blank disk gets a new GPT holding the partition (`write_new_disk_table`: a power cut after its GPT
    copies are written leaves the partition for the next attempt to find). The new partition's bytes are
    wiped before the table is written (`wipe_region`: its first and last MiB, as Talos does, and every other
    sample point of the blank check), so no stale signature or data is found on it and it counts as blank,
    whatever point an attempt was cut at. Bytes a partition the kernel has covers (one in use whose GPT
    entry was removed or made smaller) are never taken.

    Raises:
        ProvisioningError: no disk matches or none has room, or the selector fails to evaluate on a disk
            (the message says which).
    """
    try:
        selector = compile_selector(provisioning.disk_selector) if provisioning.disk_selector else None
    except SelectorError as error:
        raise ProvisioningError(f"disk selector: {error}") from error

    def selects(disk: DiskSpec) -> bool:
        return selector is None or _selects(selector, label, disk, system_disk)

    existing = _find_existing(label, disks, selects)
    if existing is not None:
        return existing  # made by an earlier attempt that did not get further (crash, discovery lag)
    reasons: list[str] = []
    for disk in sorted(disks, key=lambda d: d.dev_path):
        if disk.readonly:
            continue
        if not selects(disk):
            continue
        table = _table_for(disk, reasons)
        if table is None:
            continue
        fresh = not table.partitions
        available = largest_allocatable(table)
        size = size_for(provisioning, available)
        if size is None:
            reasons.append(f"{disk.dev_path}: {available} bytes free, {max(provisioning.min_size, 1)} needed")
            continue
        kind = (
            uuid.UUID(provisioning.partition_type) if provisioning.partition_type else LINUX_FILESYSTEM_DATA
        )
        new_table, partition = table.add_partition(size=size, name=label, type_guid=kind)
        region = Region(disk.dev_path, partition.offset(table.sector_size), partition.size(table.sector_size))
        in_kernel = kernel_partitions(disk.dev_path) if is_block_device(disk.dev_path) else {}
        clash = _kernel_clash(
            region, in_kernel, disk_holders(disk.dev_path) + whole_disk_users(disk.dev_path)
        )
        if clash:
            reasons.append(clash)
            continue
        # wiped before the table names it: an attempt cut after the write (kill -9, a kernel refusal) leaves
        # no partition its retry would hand out with an old tenant's filesystem on it. Through the disk's
        # node, with O_EXCL, so a disk in use as a whole (a filesystem on it, whatever partitions the kernel
        # lists) refuses; only while one of its partitions is held, which is what refuses the disk's O_EXCL
        # then, is it opened without, the bytes being free in both the GPT and the kernel's view
        wipe_region(region, exclusive=not (in_kernel and partition_held(disk.dev_path)))
        (write_new_disk_table if fresh else write_partition_table)(disk.dev_path, new_table)
        return region, partition.number
    detail = "; ".join(reasons) if reasons else "no disk matches the selector"
    raise ProvisioningError(f"cannot provision volume {label}: {detail}")
