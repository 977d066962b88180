"""Existing volumes (ExistingVolumeConfig): found by a CEL volume selector and mounted as they are.

As Talos' volume manager does for them (``locate.go`` ``locateVolumeByMatch``, ``format.go`` with
``FilesystemTypeNone``): the first discovered volume the selector matches, in discovery order, is the volume
(several matches are not an error); none matching leaves it missing. volumed never provisions, encrypts,
formats or grows it: what it holds is probed (read only) and mounted with that filesystem; a volume with no
filesystem or a LUKS header is refused. A read-only volume gets a read-only loop device, so nothing of
volumed's can write to it.
"""

from __future__ import annotations

import os
import stat
from functools import partial
from typing import TYPE_CHECKING, Final

import anyio.to_thread
import structlog

from volumed.config import (
    EPHEMERAL,
    STATE,
    DiskDescription,
    SelectorError,
    VolumeDescription,
    compile_volume_selector,
)
from volumed.resources import VolumePhase
from volumed.storage.blockdev import Region
from volumed.storage.filesystem import FilesystemError
from volumed.storage.loop import attach
from volumed.storage.meta import META_PARTITION_LABEL
from volumed.storage.probe import probe_region

from ._services import left_attached, left_mount, release_left_mount

log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from volumed.resources import DiscoveredVolumeSpec, DiskSpec, VolumeConfigSpec, VolumeStatusSpec

    from ._services import VolumeServices


#: The partitions volumed always locates volumes on (see `refuse_shared_region`).
ALWAYS_CLAIMED: Final = frozenset({STATE, EPHEMERAL, META_PARTITION_LABEL})

#: ``volume.name`` as Talos' selectors see it where volumed's probe is more precise: go-blockdevice names
#: every ext2/3/4 superblock ``extfs`` (blkid/internal/filesystems/ext/ext.go, ``Name``), so a Talos
#: selector says ``volume.name == "extfs"`` and one saying ``"ext4"`` matches nothing there.
_TALOS_VOLUME_NAMES: Final = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs"}


#: What volumed's probe finds that is no filesystem, and why it is not mounted (swap: `refuse_swap`). Talos
#: maps such names to no filesystem (format.go); its mount of them fails, as mount(8) does.
_NOT_MOUNTABLE: Final = {
    "gpt": "a partition table; select one of its partitions",
    "mbr": "a partition table; select one of its partitions",
    "lvm2": "an LVM2 physical volume; volumed does not activate LVM",
}


class ExistingVolumeError(Exception):
    """The existing volume cannot be used as it is (its selector fails, it holds no filesystem, it is
    encrypted): nothing is written; it is tried again when the config or the discovered volumes change, or
    on the retry timer when ``retryable``."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def is_existing(config: VolumeConfigSpec) -> bool:
    """Whether ``config`` is an existing volume: located by a volume selector, never made or formatted."""
    return bool(config.locator_match)


def volume_description(volume: DiscoveredVolumeSpec) -> VolumeDescription:
    """What the volume selector sees of a discovered volume (Talos' DiscoveredVolumeSpec field names)."""
    return VolumeDescription(
        dev_path=volume.dev_path,
        size=volume.size,
        sector_size=volume.sector_size,
        name=_TALOS_VOLUME_NAMES.get(volume.name, volume.name),
        uuid=volume.uuid,
        label=volume.label,
        partition_uuid=volume.partition_uuid,
        partition_type=volume.partition_type,
        partition_label=volume.partition_label,
        partition_index=volume.partition_index,
        io_size=volume.io_size,
        block_size=volume.block_size,
        filesystem_block_size=volume.filesystem_block_size,
        probed_size=volume.probed_size,
        device_path=volume.device_path,
        type="partition" if volume.parent else "disk",
        parent=os.path.basename(volume.parent),
        parent_dev_path=volume.parent,
        offset=volume.offset,
    )


def _disk_description(disk: DiskSpec) -> DiskDescription:
    from ._provisioning import _description

    return _description(disk)


def locate_existing(
    config: VolumeConfigSpec, discovered: Sequence[DiscoveredVolumeSpec], disks: Sequence[DiskSpec]
) -> DiscoveredVolumeSpec | None:
    """The first discovered volume the config's selector matches, None when none does.

    ``disk`` is the volume's disk (its parent, or itself for a whole disk); a volume whose disk is not
    known is evaluated without it. Volumes of a disk with an invalid partition table are passed over.

    Raises:
        ExistingVolumeError: the selector does not compile or fails to evaluate on a volume (the message
            names the problem, never the expression).
    """
    try:
        selector = compile_volume_selector(config.locator_match)
    except SelectorError as error:
        raise ExistingVolumeError(f"volume selector: {error}") from None
    by_path = {disk.dev_path: disk for disk in disks}
    for volume in discovered:
        if volume.error:
            continue
        disk = by_path.get(volume.parent or volume.dev_path)
        try:
            matched = selector.matches(
                volume_description(volume), _disk_description(disk) if disk is not None else None
            )
        except SelectorError as error:
            raise ExistingVolumeError(f"error evaluating volume locator: {error}") from None
        if matched:
            return volume
    return None


def probe_filesystem(volume: DiscoveredVolumeSpec) -> str:
    """The filesystem the volume holds, probed now (read only); Talos' checks of a mounted volume with no
    filesystem to make.

    Raises:
        ExistingVolumeError: nothing is found there, a LUKS header (volumed does not open it), a partition
            table or an LVM2 physical volume (not retryable: only a change of the config or the disk helps).
        OSError: the volume cannot be read.
    """
    signature = probe_region(Region(volume.dev_path, volume.offset, volume.size))
    if signature is None:
        raise ExistingVolumeError(f"filesystem not found on {volume.dev_path}")
    if signature.type.value == "luks":
        raise ExistingVolumeError("volume is encrypted, but no encryption config provided")
    why = _NOT_MOUNTABLE.get(signature.type.value)
    if why is not None:  # mount(8) refuses it: a clear error once, not a mount retried for ever
        raise ExistingVolumeError(f"{signature.type.value}: not mountable ({why})")
    return signature.type.value


def _is_block_device(path: str) -> bool:
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def _overlaps(path: str, offset: int, size: int, other: DiscoveredVolumeSpec) -> bool:
    """Whether the bytes ``offset``..``offset + size`` of ``path`` and ``other``'s overlap (a size of 0: to
    the end)."""
    if path != other.dev_path:
        return False
    end, other_end = offset + (size or 1 << 62), other.offset + (other.size or 1 << 62)
    return offset < other_end and other.offset < end


def ready_over(found: DiscoveredVolumeSpec, statuses: Mapping[str, VolumeStatusSpec]) -> list[str]:
    """The volumes ready on bytes that overlap ``found``'s (by their status' location), sorted."""
    return sorted(
        v
        for v, s in statuses.items()
        if s.phase == VolumePhase.READY and s.location and _overlaps(s.location, s.offset, s.size, found)
    )


def _where(volume: DiscoveredVolumeSpec) -> str:
    return (
        f"{volume.dev_path} partition {volume.partition_index}" if volume.partition_index else volume.dev_path
    )


async def held_by_ready(
    volume_id: str, found: DiscoveredVolumeSpec, statuses: Mapping[str, VolumeStatusSpec]
) -> str | None:
    """Why volume ``volume_id`` (not an existing volume) may not use ``found``, the region it is located by
    (its label), or None: another volume is ready on those bytes, an existing volume whose selector matched
    them before this volume was configured (or a volume the config dropped, still mounted: ``statuses`` has
    it). That one keeps them until the next start, as `region_owner` keeps them between existing volumes:
    opening, formatting or mounting them now would need a second loop device over a mounted filesystem
    (corrupted), or take the existing volume's filesystem from under it. At a start neither is ready and the
    labelled volume has them (`refuse_shared_region`). A block device's own node is shared as there: the
    kernel has one superblock for every mount of it."""
    ready = ready_over(found, statuses)
    if not ready or volume_id in ready:
        return None
    if found.offset == 0 and await anyio.to_thread.run_sync(_is_block_device, found.dev_path):
        return None
    return (
        f"the volume {ready[0]} is mounted from {_where(found)}: it keeps it until the next start (or until"
        " it is dropped from the config and unmounted), and this volume is not opened, formatted or mounted"
        " there"
    )


def region_owner(
    volume_id: str,
    found: DiscoveredVolumeSpec,
    statuses: Mapping[str, VolumeStatusSpec],
    located: Sequence[tuple[str, DiscoveredVolumeSpec]],
) -> str | None:
    """Which other volume has the bytes ``found`` covers, whatever their label (None: this one may take them).

    A volume ready there keeps them (any volume: STATE, a user volume, a disk volume, another existing
    volume), so one added later never takes them from a mounted one; among existing volumes none of which is
    ready there, the first in the processing order (``located``: each existing volume with what its selector
    matches now) has them.
    """
    ready = ready_over(found, statuses)
    if volume_id in ready:
        return None
    if ready:
        return ready[0]
    for other, where in located:
        if other != volume_id and other in statuses and statuses[other].phase == VolumePhase.READY:
            continue  # where it is ready counts (above), not what its selector matches now (kept, F5)
        if _overlaps(where.dev_path, where.offset, where.size, found):
            return None if other == volume_id else other
    return None


async def refuse_taken_region(
    volume_id: str,
    volume: DiscoveredVolumeSpec,
    claimed: frozenset[str],
    statuses: Mapping[str, VolumeStatusSpec],
    located: Sequence[tuple[str, DiscoveredVolumeSpec]],
) -> None:
    """Refuse existing volume ``volume_id`` the region ``volume`` its selector matches when another volume
    has it (`region_owner`, `refuse_shared_region`), unless ``volume_id`` is ready there already: a ready
    existing volume keeps its bytes until the next start, also when a volume located by their label is
    configured later (that one is refused, `held_by_ready`).

    Raises:
        ExistingVolumeError: the region is another configured volume's (retryable).
    """
    if volume_id in ready_over(volume, statuses):
        return
    await refuse_shared_region(volume, claimed, region_owner(volume_id, volume, statuses, located))


async def refuse_shared_region(
    volume: DiscoveredVolumeSpec, claimed: frozenset[str], owner: str | None = None
) -> None:
    """Refuse a region that another configured volume has: one whose label is in ``claimed`` (or STATE,
    EPHEMERAL and META, which every config has, even before all of its VolumeConfigs are published), or
    ``owner``, the volume `region_owner` gives it to. Mounting it needs a second loop device over the same
    bytes, so one filesystem would be mounted twice, each mount with its own cache, and be corrupted (a file
    written through one mount was lost). A block device's own node is shared by the kernel, one superblock
    for every mount of it (Talos' case): allowed.

    Raises:
        ExistingVolumeError: the region is another configured volume's (retryable: that volume's config may
            go).
    """
    if volume.partition_label not in claimed | ALWAYS_CLAIMED and owner is None:
        return
    if volume.offset == 0 and await anyio.to_thread.run_sync(_is_block_device, volume.dev_path):
        return
    where = f"{volume.dev_path} partition {volume.partition_index}"
    if volume.partition_label in claimed | ALWAYS_CLAIMED:
        taken = f"{where}, the volume {volume.partition_label} of this config"
    else:
        taken = f"{where}, where the volume {owner} of this config is"
    raise ExistingVolumeError(
        f"the volume selector matches {taken}: it is not given a second loop device (one filesystem"
        " mounted twice over two devices is corrupted)",
        retryable=True,
    )


def locate_all(
    configs: Sequence[tuple[str, VolumeConfigSpec]],
    discovered: Sequence[DiscoveredVolumeSpec],
    disks: Sequence[DiskSpec],
) -> list[tuple[str, DiscoveredVolumeSpec]]:
    """What the selector of each existing volume among ``configs`` matches now, in the order given (one
    whose selector fails or matches nothing is left out: it takes no region)."""
    located = []
    for volume_id, config in configs:
        if not is_existing(config):
            continue
        try:
            found = locate_existing(config, discovered, disks)
        except ExistingVolumeError:
            continue
        if found is not None:
            located.append((volume_id, found))
    return located


def moved_existing(
    config: VolumeConfigSpec,
    status: VolumeStatusSpec,
    discovered: Sequence[DiscoveredVolumeSpec],
    disks: Sequence[DiskSpec],
) -> str | None:
    """How the selector of an existing volume ready as ``status`` now matches another volume than the one it
    is mounted from (None when it still matches that one). The volume keeps its partition until the next
    start, as a disk volume keeps its disk: its device stays mounted and its status says where it is."""
    try:
        found = locate_existing(config, discovered, disks)
    except ExistingVolumeError as error:
        now = str(error)
    else:
        if found is not None and (found.dev_path, found.offset) == (status.location, status.offset):
            return None
        if found is None:
            now = "the volume selector now matches nothing"
        else:
            now = f"the volume selector now matches {_where(found)}"
    stays = (
        f"{status.location} partition {status.partition_index}" if status.partition_index else status.location
    )
    return f"{now}, the volume stays on {stays}"


def refuse_swap(filesystem: str) -> None:
    """Talos turns an existing volume holding swap on as swap; volumed does not (its swap volumes are
    SwapVolumeConfigs), and mount(8) refuses swap: a clear error instead of a mount retried for ever.

    Raises:
        ExistingVolumeError: ``filesystem`` is swap (not retryable: only a config change helps).
    """
    if filesystem == "swap":
        raise ExistingVolumeError(
            "swap: not mountable; volumed does not turn on an existing volume as swap (use a"
            " SwapVolumeConfig)"
        )


async def device_for(
    services: VolumeServices,
    volume_id: str,
    volume: DiscoveredVolumeSpec,
    *,
    read_only: bool,
    mount_target: str = "",
    devices: Collection[str] = (),
) -> str:
    """The block device to mount: the volume's own node, or a loop device over its region of an image file
    (read-only when the volume is): the one an earlier run left attached over exactly these bytes when there
    is one (`left_attached`; a second one made its mount "already a mount point"), else a new one. Kept in
    ``services.loops``, detached at shutdown like the others.

    A mount an earlier run left at ``mount_target`` of another device (its config changed between a kill and
    this start: mount.readOnly flipped, the selector moved; ``devices``: the disks and volumes discovered) is
    unmounted first, and its loop device detached (`_replace_left_mount`).

    Raises:
        ExistingVolumeError: that mount is in use (retryable; nothing attached meanwhile).
    """
    known = services.loops.get(volume_id)
    if known is not None:
        return known.path
    if volume.offset == 0 and await anyio.to_thread.run_sync(_is_block_device, volume.dev_path):
        await _replace_left_mount(services, volume_id, mount_target, volume.dev_path, devices)
        return volume.dev_path
    held = {device.path for device in services.loops.values()}
    left = await anyio.to_thread.run_sync(
        partial(left_attached, volume.dev_path, volume.offset, volume.size, held, read_only=read_only)
    )
    await _replace_left_mount(services, volume_id, mount_target, left.path if left else "", devices)
    if left is not None:  # a run killed and started again without a reboot: its mount is on this one
        await services.keep_loop(volume_id, left)
        log.info("adopted a loop device left by an earlier run", volume=volume_id, device=left.path)
        return left.path
    device = await anyio.to_thread.run_sync(
        partial(attach, volume.dev_path, offset=volume.offset, size_limit=volume.size, read_only=read_only)
    )
    await services.keep_loop(volume_id, device)
    return device.path


async def _replace_left_mount(
    services: VolumeServices, volume_id: str, mount_target: str, wanted: str, devices: Collection[str]
) -> None:
    """Unmount what an earlier run left mounted at the volume's target when it is not ``wanted`` (the device
    this run mounts there; "": a new one), and detach its loop device: the Mounter would find the target
    taken ("already a mount point") for ever, with the old device writable after mount.readOnly was set, or
    the old partition mounted after the selector moved. Something mounted there by anyone else than volumed
    is left to the Mounter (a conflict it reports).

    Raises:
        ExistingVolumeError: the left mount is in use (retryable: tried again until nothing holds it; it is
            unmounted at shutdown if it can be, so the mounts under it can go).
    """
    if not mount_target:
        return
    target = services.target(mount_target)
    held = {device.path for device in services.loops.values()}
    left = await anyio.to_thread.run_sync(
        partial(left_mount, target, devices, held, set(services.mounts.values()))
    )
    if left is None or (wanted and await anyio.to_thread.run_sync(left.is_device, wanted)):
        services.left_mounts.pop(volume_id, None)
        return
    try:
        await anyio.to_thread.run_sync(release_left_mount, left)
    except (FilesystemError, OSError) as error:
        services.left_mounts[volume_id] = left
        raise ExistingVolumeError(
            f"{target} has a mount an earlier run of volumed left, of {left.describe()}, which is in use: it"
            " cannot be replaced by the device the config now asks for (tried again until nothing holds it;"
            f" {error})",
            retryable=True,
        ) from None
    services.left_mounts.pop(volume_id, None)
