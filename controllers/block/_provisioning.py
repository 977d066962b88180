"""Provisioning: make a user volume's partition on a disk chosen by its CEL selector (blocking)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.config import DiskDescription, SelectorError, compile_selector
from volumed.storage.blockdev import Region
from volumed.storage.disklayout import read_volume_table
from volumed.storage.gpt import DEFAULT_ALIGNMENT, GPTError, NoPartitionTableError, write_partition_table
from volumed.storage.probe import wipe_region

if TYPE_CHECKING:
    from collections.abc import Sequence

    from volumed.config import DiskSelector
    from volumed.resources import DiskSpec, ProvisioningConfigSpec

SYSTEM_LABELS = ("META", "STATE", "EPHEMERAL")


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
    )


def _is_system_disk(path: str) -> bool:
    try:
        table = read_volume_table(path)
    except (GPTError, OSError):
        return False
    return any(table.find(label) is not None for label in SYSTEM_LABELS)


def _size_for(provisioning: ProvisioningConfigSpec, free: int) -> int | None:
    """The partition size for a gap of ``free`` bytes, or None when ``minSize`` does not fit.

    With ``grow`` (or without ``minSize``) the volume takes the free space up to ``maxSize``; otherwise
    exactly ``minSize``.
    """
    minimum = provisioning.min_size
    maximum = provisioning.max_size
    if free < max(minimum, 1):
        return None
    free -= free % DEFAULT_ALIGNMENT  # whole MiBs, so the end stays aligned too
    if provisioning.grow or not minimum:
        return min(free, maximum) if maximum else free
    return minimum


def _find_existing(label: str, disks: Sequence[DiskSpec]) -> tuple[Region, int] | None:
    """The partition an earlier attempt made for ``label``, if any.

    A disk whose table cannot be read (or is invalid) may hold that partition: making the volume again on
    another disk would hide the first one, with its data, behind an empty twin. So provisioning waits for
    that table to be repaired; a disk with no GPT at all holds no partition and is passed over.

    Raises:
        ProvisioningError: a disk's table cannot be read or is invalid (the message names the disk).
    """
    for disk in disks:
        try:
            table = read_volume_table(disk.dev_path)
        except (NoPartitionTableError, OSError):
            continue  # no GPT, or a disk that cannot be read at all (no medium): no partition of ours
        except GPTError as error:
            problem = str(error) if disk.dev_path in str(error) else f"{disk.dev_path}: {error}"
            raise ProvisioningError(
                f"cannot provision volume {label}: disk {disk.dev_path} may hold it but its partition table"
                f" cannot be used ({problem}); repair that table first"
            ) from None
        partition = table.find(label)
        if partition is not None:
            ss = table.sector_size
            return Region(disk.dev_path, partition.offset(ss), partition.size(ss)), partition.number
    return None


def _selects(selector: DiskSelector, label: str, disk: DiskSpec) -> bool:
    """The selector's verdict on ``disk``; one that fails to evaluate is this volume's error, no other's."""
    try:
        return selector.matches(_description(disk), system_disk=_is_system_disk(disk.dev_path))
    except SelectorError as error:
        problem = str(error).removeprefix("disk selector: ")
        raise ProvisioningError(
            f"cannot provision volume {label}: its diskSelector failed to evaluate on disk {disk.dev_path}:"
            f" {problem}"
        ) from None


def provision_partition(
    label: str, provisioning: ProvisioningConfigSpec, disks: Sequence[DiskSpec]
) -> tuple[Region, int]:
    """Add a partition named ``label`` on the first matching disk with room; returns its region and number.

    The new partition is wiped (`wipe_region`: its first and last MiB, as Talos does, and every other sample
    point of the blank check), so no stale signature or data is found on it and it counts as blank.

    Raises:
        ProvisioningError: no disk matches or none has room, or the selector fails to evaluate on a disk
            (the message says which).
    """
    try:
        selector = compile_selector(provisioning.disk_selector) if provisioning.disk_selector else None
    except SelectorError as error:
        raise ProvisioningError(f"disk selector: {error}") from error
    existing = _find_existing(label, disks)
    if existing is not None:
        return existing  # made by an earlier attempt that did not get further (crash, discovery lag)
    reasons: list[str] = []
    for disk in sorted(disks, key=lambda d: d.dev_path):
        if disk.readonly:
            continue
        if selector is not None and not _selects(selector, label, disk):
            continue
        try:
            table = read_volume_table(disk.dev_path)
        except GPTError as error:
            reasons.append(str(error) if disk.dev_path in str(error) else f"{disk.dev_path}: {error}")
            continue  # an invalid table (overlaps, a volume label twice) gets no new partition
        gap = max((last - first + 1 for first, last in table.free_ranges()), default=0) * table.sector_size
        free = max(0, gap - DEFAULT_ALIGNMENT)  # the start is aligned up: keep room for it
        size = _size_for(provisioning, free)
        if size is None:
            reasons.append(f"{disk.dev_path}: {free} bytes free, {provisioning.min_size} needed")
            continue
        new_table, partition = table.add_partition(size=size, name=label)
        write_partition_table(disk.dev_path, new_table)
        region = Region(disk.dev_path, partition.offset(table.sector_size), partition.size(table.sector_size))
        wipe_region(region)
        return region, partition.number
    detail = "; ".join(reasons) if reasons else "no disk matches the selector"
    raise ProvisioningError(f"cannot provision volume {label}: {detail}")
