"""Grow one volume at boot (Talos' ``grow``): its partition, then its active mapping, then its filesystem.

Each step is idempotent and leaves a volume that opens: a power cut after the partition table is written
leaves a larger partition with the old filesystem (the LUKS2 data segment is ``dynamic``: it follows the
partition with no header write), which the next boot maps at its new size and whose filesystem it grows.

`grow_volume` is the blocking sequence on plain values; `grow_opened_volume` is what the VolumeFormatter
calls for a volume it has prepared (it knows the activation, the key and the location).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Final, final

import anyio.to_thread
import structlog

from volumed.resources import NO_FILESYSTEM
from volumed.storage.activation import ActivationError, mapping_name
from volumed.storage.blockdev import BlockDeviceError, format_size
from volumed.storage.filesystem import FilesystemError, FilesystemGrowth, grow_to_device
from volumed.storage.gpt import GPTError, PartitionGrowth, grow_partition_on_disk
from volumed.storage.luks2 import Luks2Error

from ._encryption import Location
from ._services import read_data_segment

if TYPE_CHECKING:
    from collections.abc import Callable

    from volumed.resources import VolumeConfigSpec, VolumeStatusSpec

    from ._services import VolumeServices

log = structlog.get_logger(__name__)

#: Test hook: ``VOLUMED_GROW_CRASH_AFTER=partition`` (or ``mapping``) ends the process like ``kill -9``
#: right after that step of `grow_volume` (``os._exit(137)``), to test what the next boot finds. Read once at
#: start; unset (always, outside tests) it does nothing.
CRASH_ENV: Final = "VOLUMED_GROW_CRASH_AFTER"
_CRASH_AFTER: Final = os.environ.get(CRASH_ENV, "")


def _crash_point(step: str) -> None:
    if step == _CRASH_AFTER:
        os._exit(137)


class GrowError(Exception):
    """A grow step failed; the message names the step and the volume. What was done before it stays done."""


@final
@dataclass(frozen=True)
class VolumeGrowth:
    """What `grow_volume` did: each step's sizes before and after (``mapping`` None: not mapped by us;
    ``filesystem`` None: a raw volume, with no filesystem to grow)."""

    partition: PartitionGrowth
    mapping: tuple[int, int] | None
    filesystem: FilesystemGrowth | None

    @property
    def grew(self) -> bool:
        """Whether any step made something larger."""
        mapped = self.mapping is not None and self.mapping[1] > self.mapping[0]
        return self.partition.grew or mapped or (self.filesystem is not None and self.filesystem.grew)

    def describe(self) -> str:
        """One line for logs and statuses: ``partition 16 MiB -> 53 MiB, mapping ..., xfs ...``."""
        steps = [("partition", self.partition.old_size, self.partition.new_size)]
        if self.mapping is not None:
            steps.append(("mapping", *self.mapping))
        if self.filesystem is not None:
            steps.append((self.filesystem.fstype, self.filesystem.old_size, self.filesystem.new_size))
        return ", ".join(f"{what} {format_size(old)} -> {format_size(new)}" for what, old, new in steps)


def grow_volume(
    *,
    disk: str,
    partition: int,
    max_size: int,
    device: str,
    fstype: str,
    resize_mapping: Callable[[PartitionGrowth], tuple[int, int]] | None = None,
    relative_max_size: int = 0,
) -> VolumeGrowth:
    """Grow partition ``partition`` of ``disk`` into the free space after it (at most ``max_size`` bytes,
    0 = no limit), then the mapping above it (``resize_mapping``, given the partition's growth, returns the
    mapping's sizes before and after; None for a volume whose device follows its partition by itself), then
    the ``fstype`` filesystem on ``device`` (blocking); ``none`` (a raw volume) has no filesystem step.

    Every step runs on every call, even when the one before had nothing to do: a boot cut short after the
    partition grew still has its mapping and filesystem to grow.

    Raises:
        GrowError: a step failed (the message names it); the steps before it are done.
    """
    try:
        grown = grow_partition_on_disk(
            disk, partition, max_size=max_size, relative_max_size=relative_max_size
        )
    except (GPTError, BlockDeviceError, OSError) as error:
        raise GrowError(f"growing partition {partition} of {disk}: {error}") from error
    if grown.grew:  # the hook cuts the step that did something, not a volume with nothing to grow
        _crash_point("partition")
    mapped = None
    if resize_mapping is not None:
        try:
            mapped = resize_mapping(grown)
        except (ActivationError, Luks2Error, OSError) as error:
            raise GrowError(f"growing the mapping of partition {partition} of {disk}: {error}") from error
    if mapped is not None and mapped[1] > mapped[0]:
        _crash_point("mapping")
    if fstype == NO_FILESYSTEM:
        return VolumeGrowth(grown, mapped, None)
    try:
        filesystem = grow_to_device(device, fstype)
    except FilesystemError as error:
        raise GrowError(str(error)) from error
    return VolumeGrowth(grown, mapped, filesystem)


async def grow_opened_volume(
    services: VolumeServices, volume_id: str, config: VolumeConfigSpec, status: VolumeStatusSpec
) -> VolumeGrowth | None:
    """Grow a prepared volume whose config says ``grow`` (else None): `grow_volume` in a worker thread.

    ``status`` is the volume's status with its filesystem made (``mount_location`` is its device). An
    encrypted volume's mapping is resized with the key held since it was opened, and its opened location
    takes the partition's new size (so the next reconcile sees the volume it opened, not a new one). An
    unencrypted volume on a block device grows with its partition node; one in an image file is seen through
    a loop device of the old size, so its filesystem grows at the next start.

    Raises:
        GrowError: a step failed (partition, mapping or filesystem; the message says which).
    """
    provisioning = config.provisioning
    if provisioning is None or not provisioning.grow or not status.partition_index:
        return None
    opened = services.opened.get(volume_id)
    resize: Callable[[PartitionGrowth], tuple[int, int]] | None = None
    if opened is not None:
        volume = opened
        activator = await services.activator()
        name = mapping_name(volume_id)

        def resize_active(grown: PartitionGrowth) -> tuple[int, int]:
            before = volume.location
            location = Location(before.path, before.offset, grown.new_size if before.size else before.size)
            old = activator.status(name).size or 0
            new = activator.resize(name, read_data_segment(location), volume.result.volume_key.material)
            volume.location = location
            return old, new

        resize = resize_active

    # One partition table writer at a time: two grows (or a grow and a new partition) on one disk read,
    # change and write the same table; the later write dropped the other's change (review: a grown
    # encrypted volume's mapping and ext4 outlived its table entry, and the next new partition overwrote it).
    async with services.provisioning_lock:
        growth = await anyio.to_thread.run_sync(
            partial(
                grow_volume,
                disk=status.parent_location or status.location,
                partition=status.partition_index,
                max_size=provisioning.max_size,
                relative_max_size=provisioning.relative_max_size,
                device=status.mount_location,
                fstype=config.filesystem,
                resize_mapping=resize,
            )
        )
    if growth.grew:
        log.info("volume grown", volume=volume_id, growth=growth.describe())
    return growth


__all__ = ["CRASH_ENV", "GrowError", "VolumeGrowth", "grow_opened_volume", "grow_volume"]
