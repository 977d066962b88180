"""Where the volumes of a running subsystem stand: settled for `--once`, open for the TPM boot phase."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Final, Protocol

import anyio

from volumed.resources import (
    BLOCK,
    CONFIG,
    CONFIG_STATUS_ID,
    ConfigStatusDefinition,
    ConfigStatusSpec,
    KeySlotStatusDefinition,
    KeySlotStatusSpec,
    MountStatusDefinition,
    MountStatusSpec,
    VolumeConfigDefinition,
    VolumeConfigSpec,
    VolumePhase,
    VolumeStatusDefinition,
    VolumeStatusSpec,
)
from volumed.runtime import Kind, Pointer

if TYPE_CHECKING:
    from volumed.runtime import Resource, State

TERMINAL_PHASES: Final = (VolumePhase.READY, VolumePhase.FAILED, VolumePhase.MISSING)


@dataclass(frozen=True)
class Convergence:
    """Where every configured volume is: its status, and whether it is mounted where configured."""

    statuses: dict[str, VolumeStatusSpec]
    configured: set[str]
    mounted: set[str]
    wanted_mounts: set[str]
    config_errors: tuple[str, ...] = ()
    synced: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Failed syncs by volume, for volumes whose key slots were synced since they opened."""
    mount_parents: dict[str, str] = field(default_factory=dict)
    """The volume whose mount target is the nearest parent of a volume's (EPHEMERAL for /var/mnt/<name>):
    the Mounter mounts the volume only once that one is mounted."""

    @property
    def blocked(self) -> dict[str, str]:
        """Waiting volumes that nothing more can move, each with the volume it is stuck behind.

        A waiting volume is blocked when one of the volumes it waits on (``waiting_for``: one before it in
        the provisioning order, or STATE for its salt) failed, is missing, is not configured, or is blocked.
        A failed volume may recover on its retry timer (a KMS back), and what waits on it with it; `--once`
        does not wait for that. A volume that waits on discovery or the kernel, or on a volume still on its
        way, is not blocked.
        """
        stuck: dict[str, str] = {
            v: f"{v} {s.phase.value}"
            for v, s in self.statuses.items()
            if s.phase in (VolumePhase.FAILED, VolumePhase.MISSING)
        }
        waiting = {
            v: s.waiting_for
            for v, s in self.statuses.items()
            if s.phase == VolumePhase.WAITING and s.waiting_for
        }
        blocked: dict[str, str] = {}
        changed = True
        while changed:
            changed = False
            for volume_id, waits_on in waiting.items():
                if volume_id in blocked:
                    continue
                for other in waits_on:
                    cause = stuck.get(other) or blocked.get(other)
                    if cause is None and other not in self.configured:
                        cause = f"{other} not configured"
                    if cause is not None:
                        blocked[volume_id] = cause
                        changed = True
                        break
        return blocked

    @property
    def settled(self) -> bool:
        """Every volume is ready (mounted if it has a target, slots synced if encrypted), failed, missing, or
        `blocked` (waiting behind a failed or missing volume).

        A config that is invalid before any valid one was applied settles at once (nothing will happen).
        """
        if self.config_errors and not self.configured:
            return True
        if not self.configured or not self.configured <= set(self.statuses):
            return False
        blocked = self.blocked
        for volume_id in self.configured:
            phase = self.statuses[volume_id].phase
            if phase not in TERMINAL_PHASES and volume_id not in blocked:
                return False
            if phase != VolumePhase.READY:
                continue
            if volume_id in self.wanted_mounts and volume_id not in self.mounted:
                parent = self.mount_parents.get(volume_id)
                parent_phase = self.statuses[parent].phase if parent in self.statuses else None
                if parent not in blocked and parent_phase not in (VolumePhase.FAILED, VolumePhase.MISSING):
                    return False  # not mounted yet; else it waits for a parent that will not be mounted
            status = self.statuses[volume_id]
            if status.encryption_provider and self.synced.get(volume_id) != status.encryption_failed_syncs:
                return False  # key slots not synced yet, or the sync's outcome not yet in the status
        return True

    @property
    def volumes_open(self) -> bool:
        """Every configured volume (at least one) is ready with its key slots synced, or missing.

        Talos' condition for ``start-the-world``: after it TPM keys no longer unseal this boot. A failed
        volume, one on its way, or one without a status yet keeps the window open (for its retries);
        mounts are not waited for.
        """
        if not self.configured:
            return False
        for volume_id in self.configured:
            status = self.statuses.get(volume_id)
            if status is None or status.phase not in (VolumePhase.READY, VolumePhase.MISSING):
                return False
            synced = self.synced.get(volume_id) == status.encryption_failed_syncs
            if status.phase == VolumePhase.READY and status.encryption_provider and not synced:
                return False
        return True

    @property
    def ok(self) -> bool:
        """Every configured volume is ready (and there is at least one)."""
        return bool(self.configured) and all(
            v in self.statuses and self.statuses[v].phase == VolumePhase.READY for v in self.configured
        )


class StateView(Protocol):
    """What `convergence` reads through: a `State`, or a controller's reader (inputs declared)."""

    async def list(self, kind: Kind) -> list[Resource[Any]]: ...

    async def find(self, pointer: Pointer) -> Resource[Any] | None: ...


async def convergence(state: StateView) -> Convergence:
    """A snapshot of the volumes' progress, read from the state."""
    configs: list[Resource[VolumeConfigSpec]] = await state.list(Kind(BLOCK, VolumeConfigDefinition.type))
    statuses: list[Resource[VolumeStatusSpec]] = await state.list(Kind(BLOCK, VolumeStatusDefinition.type))
    mounts: list[Resource[MountStatusSpec]] = await state.list(Kind(BLOCK, MountStatusDefinition.type))
    syncs: list[Resource[KeySlotStatusSpec]] = await state.list(Kind(BLOCK, KeySlotStatusDefinition.type))
    config: Resource[ConfigStatusSpec] | None = await state.find(
        Pointer(CONFIG, ConfigStatusDefinition.type, CONFIG_STATUS_ID)
    )
    return Convergence(
        statuses={s.id: s.spec for s in statuses},
        configured={c.id for c in configs},
        mounted={m.spec.volume_id for m in mounts},
        wanted_mounts={c.id for c in configs if c.spec.mount_target},
        config_errors=config.spec.errors if config is not None else (),
        synced={s.id: s.spec.failed_syncs for s in syncs if s.spec.keys_digest},
        mount_parents=_mount_parents({c.id: c.spec.mount_target for c in configs if c.spec.mount_target}),
    )


def _mount_parents(targets: dict[str, str]) -> dict[str, str]:
    """Each volume whose target is below another volume's, with the volume of the nearest such target."""
    parts = {v: PurePosixPath(t).parts for v, t in targets.items()}  # polled at each settle check: built once
    parents = {}
    for volume_id, mine in parts.items():
        above = [
            (len(theirs), v)
            for v, theirs in parts.items()
            if v != volume_id and len(theirs) < len(mine) and mine[: len(theirs)] == theirs
        ]
        if above:
            parents[volume_id] = max(above)[1]
    return parents


async def wait_settled(state: State, *, poll: float = 0.2) -> Convergence:
    """Wait until every configured volume is settled (see `Convergence.settled`)."""
    while True:
        snapshot = await convergence(state)
        if snapshot.settled:
            return snapshot
        await anyio.sleep(poll)
