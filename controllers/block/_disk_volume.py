"""Disk volumes (UserVolumeConfig ``volumeType: disk``): a whole disk chosen by the volume's disk selector.

Talos v1.12 (``locate.go`` ``locateDiskByDiskMatch`` and ``findCandidateDisks``, ``disk.go``
``CheckDiskForProvisioning``): the selector is evaluated on every disk; more than one match is an error
("multiple disks matched locator for disk volume"), none is "no disks matched selector for volume"; the
disk itself is the volume (no partition table is made) and is formatted (or encrypted) only when nothing is
found on it. Here the disk is then handled like any other volume by the formatter, whose blank-check rules
apply: a disk with a partition table, any signature or data is never written.

Besides, volumed never hands a disk volume the system disk (the one holding META), a disk on which another
configured volume is located (a labelled partition of STATE, EPHEMERAL, META or a user volume, an existing
volume's match, or where an existing volume is ready: it keeps its disk until the next start, whatever its
selector or the filesystem's label now say), nor a disk that another disk volume already has: Talos relies on
the format step alone there, which would mount a second filesystem view of the same bytes when the types
agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.config import SelectorError, compile_selector
from volumed.resources import DiscoveredVolumeSpec, VolumeType

from ._existing import ALWAYS_CLAIMED, ExistingVolumeError, is_existing, locate_existing

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from volumed.resources import DiskSpec, VolumeConfigSpec


class DiskVolumeError(Exception):
    """No disk can be the volume (none or several match, or the one matched is taken): nothing is written.
    ``retryable`` errors are tried again on the retry timer (what holds the disk may go)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def is_disk_volume(config: VolumeConfigSpec) -> bool:
    """Whether ``config`` is a whole-disk volume."""
    return config.volume_type == VolumeType.DISK


def select_disk(config: VolumeConfigSpec, disks: Sequence[DiskSpec], system_disk: str | None) -> DiskSpec:
    """The one disk the volume's selector matches (Talos' words when none or several do).

    Raises:
        DiskVolumeError: the selector fails, matches no disk or several, or matches a read-only disk.
    """
    from ._provisioning import _description

    expression = config.provisioning.disk_selector if config.provisioning is not None else ""
    try:
        selector = compile_selector(expression)
        matched = [
            disk
            for disk in disks
            if selector.matches(_description(disk), system_disk=disk.dev_path == system_disk)
        ]
    except SelectorError as error:
        raise DiskVolumeError(f"error evaluating disk locator: {error}", retryable=False) from None
    if len(matched) > 1:
        paths = " ".join(disk.dev_path for disk in matched)
        raise DiskVolumeError(
            f"multiple disks matched locator for disk volume; matched disks: [{paths}]", retryable=False
        )
    if not matched:
        raise DiskVolumeError("no disks matched selector for volume", retryable=True)
    if matched[0].readonly:
        raise DiskVolumeError(f"the disk {matched[0].dev_path} is read-only", retryable=True)
    return matched[0]


def disk_holders(
    configs: Mapping[str, VolumeConfigSpec],
    discovered: Sequence[DiscoveredVolumeSpec],
    disks: Sequence[DiskSpec],
) -> dict[str, str]:
    """Disk path -> a volume of the config located on it (not a disk volume): the disk holds a partition
    labelled as a configured volume (or STATE, EPHEMERAL, META), or an existing volume's selector matches
    something on it."""
    labels = {c.partition_label: v for v, c in configs.items() if c.partition_label} | {
        label: label for label in ALWAYS_CLAIMED
    }
    holders: dict[str, str] = {}
    for volume in discovered:
        if volume.partition_label in labels:
            holders.setdefault(volume.parent or volume.dev_path, labels[volume.partition_label])
    for volume_id, config in configs.items():
        if not is_existing(config):
            continue
        try:
            found = locate_existing(config, discovered, disks)
        except ExistingVolumeError:
            continue  # its own status says why; it holds nothing
        if found is not None:
            holders.setdefault(found.parent or found.dev_path, volume_id)
    return holders


def disk_owners(selected: Mapping[str, str], ready_on: Mapping[str, str]) -> dict[str, str]:
    """Disk path -> the one disk volume that has it: the one ready on it (``ready_on``: disk volume ->
    disk), even when its selector now chooses another disk (it stays there until the next start, see
    `DiskClaims.moved`), else the first by volume id of those that select it (``selected``: volume -> disk).
    """
    owners: dict[str, str] = {}
    for volume_id in sorted(ready_on):
        owners.setdefault(ready_on[volume_id], volume_id)
    for volume_id in sorted(selected):
        owners.setdefault(selected[volume_id], volume_id)
    return owners


def check_taken(
    volume_id: str,
    disk: DiskSpec,
    *,
    system_disk: str | None,
    holders: Mapping[str, str],
    owners: Mapping[str, str],
) -> None:
    """Refuse a disk another volume has (see the module docstring).

    Raises:
        DiskVolumeError: the disk is the system disk (not retryable), or another volume's (retryable).
    """
    path = disk.dev_path
    if path == system_disk:
        raise DiskVolumeError(
            f"the disk {path} is the system disk (it holds META): a disk volume never takes it",
            retryable=False,
        )
    if path in holders:
        raise DiskVolumeError(
            f"the disk {path} holds the volume {holders[path]} of this config: a disk volume never takes it",
            retryable=True,
        )
    owner = owners.get(path, volume_id)
    if owner != volume_id:
        raise DiskVolumeError(f"the disk {path} is the disk volume {owner}'s", retryable=True)


def whole_disk(disk: DiskSpec, discovered: Iterable[DiscoveredVolumeSpec]) -> DiscoveredVolumeSpec:
    """The disk as a volume (Talos' status of a disk volume: location the disk, no parent, no partition),
    with what discovery probed on it when it lists the whole disk."""
    known = next(
        (v for v in discovered if v.dev_path == disk.dev_path and not v.parent and not v.error), None
    )
    return DiscoveredVolumeSpec(
        dev_path=disk.dev_path,
        size=disk.size,
        sector_size=disk.sector_size or 512,
        name=known.name if known is not None else "",
        uuid=known.uuid if known is not None else "",
        label=known.label if known is not None else "",
    )


class DiskClaims:
    """The disk volumes' disks for one formatter pass: which disk each selects, and whether it may have it.

    Built from the pass's configs, discovered volumes, disks and where each volume was ready before it
    (``ready_on``: volume -> the disk it is ready on; disk volumes', existing volumes' and those of volumes
    no longer configured, still mounted, count).
    """

    def __init__(
        self,
        configs: Mapping[str, VolumeConfigSpec],
        discovered: Sequence[DiscoveredVolumeSpec],
        disks: Sequence[DiskSpec],
        *,
        system_disk: str | None,
        ready_on: Mapping[str, str],
    ) -> None:
        self._system_disk = system_disk
        self._selected: dict[str, DiskSpec | DiskVolumeError] = {}
        for volume_id, config in configs.items():
            if not is_disk_volume(config):
                continue
            try:
                self._selected[volume_id] = select_disk(config, disks, system_disk)
            except DiskVolumeError as error:
                self._selected[volume_id] = error
        others = {v: c for v, c in configs.items() if not is_disk_volume(c)}
        # an existing volume ready on a disk holds it even when its selector no longer matches anything there
        # (changed, or the mounted filesystem relabelled): its mount stays until the next start (review30 F1);
        # so does any volume the config dropped that is still mounted (its unmount busy)
        self._holders: dict[str, str] = {}
        for volume_id, path in sorted(ready_on.items()):
            if volume_id not in configs or is_existing(configs[volume_id]):
                self._holders.setdefault(path, volume_id)
        for path, volume_id in (disk_holders(others, discovered, disks) if self._selected else {}).items():
            self._holders.setdefault(path, volume_id)
        chosen = {v: d.dev_path for v, d in self._selected.items() if not isinstance(d, DiskVolumeError)}
        self._ready = {v: path for v, path in ready_on.items() if v in configs and is_disk_volume(configs[v])}
        self._owners = disk_owners(chosen, self._ready)

    @property
    def reserved(self) -> frozenset[str]:
        """Disks a disk volume has (selected, not the system disk, holding no other volume): no partition
        is made on them."""
        return frozenset(
            path
            for path in self._owners
            if path != self._system_disk and (path not in self._holders or path in self._ready.values())
        )

    def ready_on(self, path: str) -> str | None:
        """The disk volume that is ready on disk ``path`` (its filesystem or LUKS2 in use), else None: nothing
        else of the config may use that disk (an existing volume matching its filesystem is refused)."""
        return next((volume for volume, disk in sorted(self._ready.items()) if disk == path), None)

    def take(self, volume_id: str) -> DiskSpec:
        """The disk of disk volume ``volume_id``.

        Raises:
            DiskVolumeError: none can be chosen, or the chosen one is taken (`check_taken`).
        """
        chosen = self._selected.get(volume_id)
        if chosen is None:
            raise DiskVolumeError("not a disk volume of this pass", retryable=True)
        if isinstance(chosen, DiskVolumeError):
            raise chosen
        if self._ready.get(volume_id) == chosen.dev_path:
            return chosen  # it is there already: what else now matches that disk cannot take it
        check_taken(
            volume_id, chosen, system_disk=self._system_disk, holders=self._holders, owners=self._owners
        )
        return chosen

    def moved(self, volume_id: str, location: str) -> str | None:
        """How the config now chooses another disk than ``location``, the one disk volume ``volume_id`` is
        ready on (None when it still chooses that disk). Such a volume keeps its disk until the next start,
        as Talos keeps a ready volume where it is: formatting the newly chosen disk (LUKS2 or mkfs) and
        mounting it in place of the one in use is not done under a running system."""
        chosen = self._selected.get(volume_id)
        if chosen is None or (not isinstance(chosen, DiskVolumeError) and chosen.dev_path == location):
            return None
        now = str(chosen) if isinstance(chosen, DiskVolumeError) else f"it selects the disk {chosen.dev_path}"
        return f"the disk selector changed ({now}), the volume stays on {location}"
