"""VolumeFormatter: locate -> provision -> encrypt-if-empty / open -> mkfs-if-empty; a VolumeStatus each.

Talos' phase machine and order (`volumes.CompareVolumeConfigs`): volumes without provisioning first, then by
wave (system volumes -1, user volumes 0), non-growing before growing, smaller max size first with an unlimited
max size (0) last, then by id. Only *making a partition* waits (Talos' `PreviousWaveProvisioned`, see
`provisioning_blockers`); locating and opening an existing volume never waits for another. Volumes converge
concurrently (their KDFs run in parallel worker threads); partitions are made one after another, in order.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread
import structlog

from volumed.keys import KeyProviderError
from volumed.resources import (
    BLOCK,
    NO_FILESYSTEM,
    SWAP_FILESYSTEM,
    DiscoveredVolumeDefinition,
    DiscoveredVolumeSpec,
    DiskDefinition,
    DiskSpec,
    KeySlotStatusDefinition,
    MountStatusDefinition,
    MountStatusSpec,
    VolumeConfigDefinition,
    VolumeConfigSpec,
    VolumeKeySecretsDefinition,
    VolumeKeySecretsSpec,
    VolumePhase,
    VolumeStatusDefinition,
    VolumeStatusSpec,
)
from volumed.runtime import Kind, Pointer
from volumed.runtime.controller import Controller, EventSource, Input, Output, failure_text, passes_through
from volumed.runtime.state import StateError
from volumed.storage.activation import ActivationError, cipher_problem
from volumed.storage.blockdev import Region
from volumed.storage.filesystem import FilesystemError, make_filesystem
from volumed.storage.gpt import GPTError
from volumed.storage.loop import LoopError
from volumed.storage.luks2 import Luks2Error
from volumed.storage.meta import META_PARTITION_LABEL, MetaError, MetaPartition
from volumed.storage.probe import ContentKind, examine_region

from ..keys._key_resolver import KEY_INPUTS, key_environment
from ..keys._providers import NODE_UUID_PENDING, TPM_PHASE_PENDING, KeyEnvironment, salt_reason, slot_keys
from ..sources import watch_exits
from ._directory import PARENT as DIRECTORY_PARENT
from ._directory import directory_problem, is_directory, parent_mounted
from ._disk_volume import DiskClaims, DiskVolumeError, is_disk_volume, whole_disk
from ._encryption import (
    Location,
    NoUsableKeyError,
    activation_flags,
    format_encrypted,
    mkfs_pending,
    open_encrypted,
    set_mkfs_pending,
    step_time_limit,
)
from ._existing import (
    ExistingVolumeError,
    device_for,
    held_by_ready,
    is_existing,
    locate_all,
    locate_existing,
    moved_existing,
    probe_filesystem,
    refuse_swap,
    refuse_taken_region,
)
from ._grow import GrowError, grow_opened_volume
from ._mkfs_mark import (
    ForeignValueError,
    MarkedVolume,
    MkfsMarkError,
    VolumeDisk,
    VolumePartition,
    interrupted_mkfs,
    mark_mkfs,
    unmark_mkfs,
)
from ._provisioning import ProvisioningError, provision_partition, system_disk_of
from ._services import OpenVolume

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from volumed.runtime.controller import ControllerContext
    from volumed.storage.probe import Signature

    from ._encryption import SlotKey
    from ._services import VolumeServices

log = structlog.get_logger(__name__)

RETRY_INTERVAL: Final = 30.0  # Talos retries retryable volume errors on this timer
ENCRYPTION_TIME_LIMIT: Final = 60.0  # Talos' overall limit per encryption step
# Settled phases a new attempt may replace: a pass that retries one publishes its statuses together
_STALE_WHILE_RETRIED: Final = frozenset({VolumePhase.FAILED, VolumePhase.MISSING})


class VolumeWaiting(Exception):
    """Nothing can be tried yet (e.g. every key is locked to a STATE that is not mounted): phase waiting.

    The message is the reason the VolumeStatus shows; ``waiting_for`` names the volumes whose progress this
    one waits on (empty when it waits on something else: discovery, the kernel), so that `--once` can tell a
    wait that can still end from one behind a failed or missing volume.
    """

    def __init__(self, reason: str, *, waiting_for: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.waiting_for = waiting_for


class VolumeError(Exception):
    """A volume step failed; ``retryable`` errors are retried on a timer, others on the next change."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class _Work:
    volume_id: str
    config: VolumeConfigSpec
    secrets: VolumeKeySecretsSpec | None


@dataclass
class _Progress:
    """The status one attempt has reached so far: a failure reports it, and the next attempt resumes there."""

    status: VolumeStatusSpec


def kept_encryption_change(config: VolumeConfigSpec, status: VolumeStatusSpec) -> str | None:
    """How ``config`` changes the encryption of a ready volume, which keeps its own until the next boot."""
    if status.phase != VolumePhase.READY:
        return None
    wanted = config.encryption.provider if config.encryption is not None else ""
    if wanted != status.encryption_provider:
        return (
            f"the config changes encryption from {status.encryption_provider or 'none'} to {wanted or 'none'}"
        )
    return None


def _change_needing_a_new_volume(config: VolumeConfigSpec, status: VolumeStatusSpec) -> str | None:
    """What in ``config`` a ready volume cannot follow without being made again (encryption, filesystem)."""
    change = kept_encryption_change(config, status)
    if (
        change is None
        and status.phase == VolumePhase.READY
        and config.filesystem != status.filesystem
        and not is_existing(config)  # it has whatever filesystem it is found with
    ):
        change = f"the config changes the filesystem from {status.filesystem} to {config.filesystem}"
    return change


def _same_volume(opened: Location, found: Location) -> bool:
    """Whether the volume opened at ``opened`` is the one now found at ``found``.

    A volume this run grew has a larger opened location than discovery reports until its next scan: still
    the same volume (opening it again would map the old, smaller size over the grown mapping).
    """
    if (opened.path, opened.offset) != (found.path, found.offset):
        return False
    return opened.size == found.size or (
        opened.size is not None and found.size is not None and opened.size > found.size
    )


def processing_order(volume: _Work) -> tuple[bool, int, bool, bool, int, str]:
    """Talos' order: no provisioning first, then wave, non-growing first, smaller max size first with an
    unlimited one (0, also a percentage, which Talos keeps apart from MaxSize) last, then id."""
    provisioning = volume.config.provisioning
    if provisioning is None:
        return (False, 0, False, False, 0, volume.volume_id)
    return (
        True,
        provisioning.wave,
        provisioning.grow,
        provisioning.max_size == 0,
        provisioning.max_size,
        volume.volume_id,
    )


def provisioning_blockers(
    ordered: Sequence[_Work], index: int, statuses: Mapping[str, VolumeStatusSpec]
) -> tuple[str, ...]:
    """The volumes that hold back ``ordered[index]`` (`processing_order`) from making its partition.

    Only making a partition waits: a volume that is found is opened regardless, and volumes without
    provisioning never hold anything back. An earlier wave holds a later one back until each of its volumes
    with provisioning is ready (Talos' `fullyProvisionedWave`). Within a wave, partitions are still made in
    the order (STATE's 100 MiB before EPHEMERAL takes the rest), but an earlier volume holds the next one back
    only until it has its partition or has failed: unlike Talos, where any volume of the wave that is not
    ready (a user volume whose selector matches nothing) holds back every later one of the wave for good.
    """
    provisioning = ordered[index].config.provisioning
    if provisioning is None:
        return ()
    blockers: list[str] = []
    for earlier in ordered[:index]:
        if earlier.config.provisioning is None:
            continue
        status = statuses.get(earlier.volume_id, VolumeStatusSpec())
        if earlier.config.provisioning.wave < provisioning.wave:
            holds = status.phase != VolumePhase.READY
        else:
            holds = not status.location and status.phase != VolumePhase.FAILED
        if holds:
            blockers.append(earlier.volume_id)
    return tuple(blockers)


def waiting_reason(blockers: Sequence[str]) -> str:
    volumes = ("volumes " if len(blockers) > 1 else "volume ") + ", ".join(blockers)
    return f"waiting for {volumes} to be provisioned first: partitions are made in wave order"


def keys_digest(
    config: VolumeConfigSpec, secrets: VolumeKeySecretsSpec | None, keys: Sequence[SlotKey]
) -> str:
    """Changes when the configured keys or their availability change (then the key slots are synced)."""
    material = {
        "encryption": config.encryption.model_dump(mode="json") if config.encryption else None,
        "static": [
            hashlib.sha256(k.passphrase.get_secret_value()).hexdigest()
            for k in (secrets.static_keys if secrets else ())
        ],
        "ready": [k.slot for k in keys if k.provider is not None],
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class VolumeFormatter(Controller):
    """Converges every configured volume to ready and reports each one's VolumeStatus, as soon as that
    volume's attempt of the pass ended (a ready volume is mounted while slower ones are still on their way).

    Encrypt only an empty device: a device carrying any other signature is refused with
    "block dev type mismatch" and never written. mkfs only when the opened device has no filesystem,
    or holds volumed's own mkfs that a power cut interrupted (see `_format`).
    Re-opening a volume that is already active reuses it (Talos crashes there). Formatting adds every
    configured key; after an open the KeySlotSyncer brings the slots in line with the config.
    """

    name = "VolumeFormatter"
    inputs = (
        *KEY_INPUTS,
        Input(BLOCK, DiscoveredVolumeDefinition.type),
        Input(BLOCK, DiskDefinition.type),
        Input(BLOCK, MountStatusDefinition.type),
        Input(BLOCK, KeySlotStatusDefinition.type),  # failed syncs are copied into the status
    )
    outputs = (Output(VolumeStatusDefinition.type, namespace=BLOCK),)

    def __init__(
        self, services: VolumeServices, environment: KeyEnvironment, *, retry_interval: float = RETRY_INTERVAL
    ) -> None:
        self._services = services
        self._base_env = environment
        self._retry = retry_interval
        self._statuses: dict[str, VolumeStatusSpec] = {}
        self._logged_phases: dict[str, VolumePhase] = {}  # the phase last published (and logged) per volume
        self._failed_inputs: dict[str, str] = {}
        # LUKS-formatted by this process and not yet given a filesystem: its mkfs-pending mark (committed by
        # the format) is no sign of an interrupted mkfs, so no warning is logged for it
        self._fresh: set[str] = set()
        # Grown this run: growing is done once per start, before the volume is ready and mounted (every later
        # reconcile of a ready volume passes through `_format` again, with its filesystem in use)
        self._grown: set[str] = set()
        # The partition labels configured volumes are located by: an existing volume found on an image file's
        # partition with one of them gets no second loop device over it (`refuse_shared_region`)
        self._claimed: frozenset[str] = frozenset()
        # What each existing volume's selector matches, in the processing order (`region_owner`)
        self._located: list[tuple[str, DiscoveredVolumeSpec]] = []
        # The whole disks of disk volumes (UserVolumeConfig volumeType: disk), chosen once per pass
        self._disks = DiskClaims({}, [], [], system_disk=None, ready_on={})
        # A FUSE server that dies leaves its volumes' I/O failing (EIO) and nothing else changes: its exit
        # wakes this controller, whose next activate() fails those volumes with why (review23 F1)
        self.sources = (EventSource("FUSE servers", partial(watch_exits, self._fuse_servers)),)

    def _fuse_servers(self) -> set[int]:
        """The FUSE server processes the volumes of this run's runtime directory run in (worker thread)."""
        if not self._services.opened or self._services.chosen_backend != "fuse":
            return set()
        from volumed.storage.activation import FuseActivator

        return FuseActivator(runtime_dir=self._services.runtime_dir).server_pids()

    async def reconcile(self, ctx: ControllerContext) -> None:
        env = await key_environment(ctx, self._base_env)
        configs = await ctx.list(Kind(BLOCK, VolumeConfigDefinition.type), VolumeConfigSpec)
        # Disks first: Discovery publishes a disk's volumes before the disk, so every disk read here has its
        # volumes in the list read next (else a volume could be reported missing mid-scan, and `--once`
        # would stop there).
        disks = [d.spec for d in await ctx.list(Kind(BLOCK, DiskDefinition.type), DiskSpec)]
        discovered = [
            v.spec for v in await ctx.list(Kind(BLOCK, DiscoveredVolumeDefinition.type), DiscoveredVolumeSpec)
        ]
        work: list[_Work] = []
        for config in configs:
            secrets = await ctx.find(
                Pointer(BLOCK, VolumeKeySecretsDefinition.type, config.id), VolumeKeySecretsSpec
            )
            work.append(_Work(config.id, config.spec, secrets.spec if secrets is not None else None))
        work.sort(key=processing_order)
        self._claimed = frozenset(w.config.partition_label for w in work if w.config.partition_label)
        self._located = await anyio.to_thread.run_sync(
            locate_all, [(w.volume_id, w.config) for w in work], discovered, disks
        )
        self._disks = DiskClaims(
            {w.volume_id: w.config for w in work},
            discovered,
            disks,
            system_disk=system_disk_of(discovered),
            ready_on={
                v: s.parent_location or s.location
                for v, s in self._statuses.items()
                if s.phase == VolumePhase.READY
            },
        )

        # Every volume converges at once; one that must make its partition first waits until the attempts of
        # the volumes with provisioning before it ended in this pass, then asks `provisioning_blockers`.
        finished = {item.volume_id: anyio.Event() for item in work}

        async def gate(index: int) -> None:
            for earlier in work[:index]:
                if earlier.config.provisioning is not None:
                    await finished[earlier.volume_id].wait()
            blockers = provisioning_blockers(work, index, self._statuses)
            if blockers:
                raise VolumeWaiting(waiting_reason(blockers), waiting_for=blockers)

        # A volume failed or missing after the last pass is attempted again in this one; while it is, its old
        # status would look settled next to the others' new ones, and `--once` (or the TPM boot phase) would
        # end on it (review40 F1). Such a pass publishes its statuses together at its end, as before.
        retrying = any(self._status(item.volume_id).phase in _STALE_WHILE_RETRIED for item in work)
        publish = None if retrying else partial(self._publish_early, ctx)
        async with anyio.create_task_group() as tg:
            for index, item in enumerate(work):
                tg.start_soon(
                    self._converge_one,
                    item,
                    discovered,
                    disks,
                    env,
                    partial(gate, index),
                    finished[item.volume_id],
                    publish,
                )

        # Each status was published as its attempt ended (`_publish_early`): these writes change nothing then,
        # and publish what an early write could not.
        for item in work:
            status = self._statuses[item.volume_id]
            await ctx.apply(VolumeStatusDefinition.new(item.volume_id, status))
            self._log_phase(item.volume_id, status)
            if status.phase == VolumePhase.FAILED and self._failed_inputs.get(item.volume_id) == "retryable":
                ctx.requeue_after(self._retry)

        configured = {item.volume_id for item in work}
        mounted = {
            m.spec.volume_id for m in await ctx.list(Kind(BLOCK, MountStatusDefinition.type), MountStatusSpec)
        }
        # A volume the config dropped keeps its status while still mounted (busy): its bytes stay its own
        # (`held_by_ready`, `DiskClaims`) until it is unmounted (its MountStatus going wakes this controller).
        for volume_id in [v for v in self._statuses if v not in configured and v not in mounted]:
            self._statuses.pop(volume_id)
            self._logged_phases.pop(volume_id, None)
        for volume_id in [v for v in self._services.opened if v not in configured and v not in mounted]:
            await self._services.close(volume_id)

    async def _publish_early(self, ctx: ControllerContext, volume_id: str) -> None:
        """Publish a volume's status as soon as its attempt of the pass ended (it is final for the pass): the
        Mounter mounts a ready volume then, not once the slowest volume of the pass is done (issue 16).

        A write the state refuses (the status still tearing down under a finalizer) is left to the pass end,
        where it fails the reconcile as before, rather than cancelling the attempts of the other volumes.
        """
        status = self._statuses[volume_id]
        try:
            await ctx.apply(VolumeStatusDefinition.new(volume_id, status))
        except StateError:
            return
        self._log_phase(volume_id, status)

    def _log_phase(self, volume_id: str, status: VolumeStatusSpec) -> None:
        """An info line when a volume's published phase changes (with the reason unless it is ready)."""
        previous = self._logged_phases.get(volume_id)
        if previous == status.phase:
            return
        self._logged_phases[volume_id] = status.phase
        change = f"{previous.value if previous is not None else 'none'} -> {status.phase.value}"
        reason = (
            {}
            if status.phase == VolumePhase.READY or not status.error_message
            else {"reason": status.error_message}
        )
        log.info("volume phase changed", volume=volume_id, phase=change, **reason)

    def _status(self, volume_id: str) -> VolumeStatusSpec:
        return self._statuses.get(volume_id, VolumeStatusSpec())

    async def _converge_one(
        self,
        item: _Work,
        discovered: Sequence[DiscoveredVolumeSpec],
        disks: Sequence[DiskSpec],
        env: KeyEnvironment,
        gate: Callable[[], Awaitable[None]],
        finished: anyio.Event,
        publish: Callable[[str], Awaitable[None]] | None,
    ) -> None:
        try:
            # The volume's id on every line logged meanwhile (the key-slot lines of format_encrypted, too).
            with structlog.contextvars.bound_contextvars(volume=item.volume_id):
                await self._attempt(item, discovered, disks, env, gate)
            # Before `finished`: a volume that waits on this one (`waiting_for`) is published after it, so a
            # reader never sees it blocked behind this volume's status of the last pass.
            if publish is not None:
                await publish(item.volume_id)
        finally:
            finished.set()  # its status is recorded: volumes after it in the order may decide

    async def _attempt(
        self,
        item: _Work,
        discovered: Sequence[DiscoveredVolumeSpec],
        disks: Sequence[DiskSpec],
        env: KeyEnvironment,
        gate: Callable[[], Awaitable[None]],
    ) -> None:
        status = self._status(item.volume_id)
        change = _change_needing_a_new_volume(item.config, status)
        if change is None and is_disk_volume(item.config) and status.phase == VolumePhase.READY:
            change = self._disks.moved(item.volume_id, status.location)
        if change is None and is_existing(item.config) and status.phase == VolumePhase.READY:
            change = await anyio.to_thread.run_sync(moved_existing, item.config, status, discovered, disks)
        if change is not None:
            # As in Talos, a ready volume is not made again under a running system (it is in use; the change
            # may be a typo): the status says so, and the next boot applies the config.
            self._statuses[item.volume_id] = status.model_copy(
                update={"error_message": f"{change}: kept as it is until the next boot"}
            )
            return
        if status.phase == VolumePhase.FAILED:
            if self._failed_inputs.get(item.volume_id) not in ("retryable", None) and self._failed_inputs.get(
                item.volume_id
            ) == _inputs_digest(item, discovered, env):
                return  # a non-retryable failure waits for a change
            status = status.model_copy(update={"phase": status.pre_fail_phase or VolumePhase.WAITING})
        progress = _Progress(status)
        try:
            status = await self._converge(item, progress, discovered, disks, env, gate)
            self._failed_inputs.pop(item.volume_id, None)
        except VolumeWaiting as waiting:
            status = status.model_copy(
                update={
                    "phase": VolumePhase.WAITING,
                    "error_message": str(waiting),
                    "waiting_for": waiting.waiting_for,
                }
            )
        except BaseException as raised:  # a VolumeError, or anything unforeseen: this volume fails, no other
            if passes_through(raised):
                raise
            if isinstance(raised, VolumeError):
                error = raised
            else:  # a bug, or a library error nobody foresaw (a panic even)
                log.error(
                    "volume step failed unexpectedly", volume=item.volume_id, error=failure_text(raised)
                )
                error = VolumeError(f"unexpected error: {failure_text(raised)}", retryable=True)
            self._failed_inputs[item.volume_id] = (
                "retryable" if error.retryable else _inputs_digest(item, discovered, env)
            )
            # As in Talos: what the attempt learned stays visible, and the next one resumes from its phase.
            reached = progress.status
            status = reached.model_copy(
                update={
                    "phase": VolumePhase.FAILED,
                    "pre_fail_phase": reached.phase,
                    "error_message": str(error),
                    "waiting_for": (),
                }
            )
        self._statuses[item.volume_id] = status

    async def _converge(
        self,
        item: _Work,
        progress: _Progress,
        discovered: Sequence[DiscoveredVolumeSpec],
        disks: Sequence[DiskSpec],
        env: KeyEnvironment,
        gate: Callable[[], Awaitable[None]],
    ) -> VolumeStatusSpec:
        """One attempt from ``progress.status``; each phase reached is recorded in ``progress`` as it goes.

        ``gate`` raises `VolumeWaiting` while volumes before this one in the order must be ready first; it is
        awaited only before a partition is made.
        """
        config = item.config
        status = progress.status.model_copy(
            update={"error_message": "", "pre_fail_phase": None, "waiting_for": ()}
        )
        if is_directory(config):  # nothing to locate, open or format: ready once EPHEMERAL is mounted
            if not parent_mounted(self._services):
                raise VolumeWaiting(
                    f"waiting for {DIRECTORY_PARENT} to be mounted", waiting_for=(DIRECTORY_PARENT,)
                )
            refused = await anyio.to_thread.run_sync(directory_problem, self._services, config.mount_target)
            if refused is not None:  # a symbolic link in its path: never followed out of EPHEMERAL
                raise VolumeError(refused, retryable=True)
            return status.model_copy(update={"phase": VolumePhase.READY})
        if is_existing(config):  # found by its selector, mounted as it is: never provisioned or formatted
            return await self._existing(item, progress, status, discovered, disks)
        found: DiscoveredVolumeSpec | None
        if is_disk_volume(config):  # its whole disk, chosen by the selector; blank-checked as any volume
            found = await self._whole_disk(item, discovered, disks)
        else:
            found = next((v for v in discovered if v.partition_label == config.partition_label), None)
        if found is not None and config.locate_non_empty and not found.name and not found.error:
            found = None  # STATE without a config: a blank partition is missing, as in Talos, never formatted
        unusable = next(
            (
                v
                for v in discovered
                if config.partition_label and v.partition_label == config.partition_label and v.error
            ),
            None,
        )
        if unusable is not None:  # its disk's partition table is invalid: nothing there is opened or written
            if status.phase == VolumePhase.READY:  # in use since before: left as it is
                return status.model_copy(update={"error_message": f"{unusable.error}: kept as it is"})
            raise VolumeError(unusable.error, retryable=False)
        if found is not None:
            held = await held_by_ready(item.volume_id, found, self._statuses)
            if held is not None:  # an existing volume is mounted from it: never a second mount (review30 F2)
                raise VolumeError(held, retryable=True)
            location = Location(found.dev_path, found.offset, found.size)
            opened = self._services.opened.get(item.volume_id)
            if opened is not None and _same_volume(opened.location, location):
                location = opened.location  # grown this run: larger than discovery's last scan
            status = status.model_copy(
                update={
                    "location": found.dev_path,
                    "offset": found.offset,
                    "size": location.size,
                    "parent_location": found.parent,
                    "partition_index": found.partition_index,
                    "partition_uuid": found.partition_uuid,
                    "uuid": found.uuid,
                }
            )
        elif status.location and status.phase not in (VolumePhase.WAITING, VolumePhase.MISSING):
            location = Location(status.location, status.offset, status.size)  # provisioned, not rescanned yet
        elif not disks:
            raise VolumeWaiting("waiting for disk discovery")
        elif config.provisioning is not None:
            await gate()
            try:
                async with self._services.provisioning_lock:  # one partition table edit at a time
                    region, number = await anyio.to_thread.run_sync(
                        partial(
                            provision_partition,
                            config.partition_label,
                            config.provisioning,
                            [d for d in disks if d.dev_path not in self._disks.reserved],
                            system_disk=system_disk_of(discovered),
                        )
                    )
            except (ProvisioningError, GPTError, OSError) as error:
                raise VolumeError(str(error), retryable=True) from error
            if await anyio.Path(region.path).is_block_device():
                # Use the partition's own node once discovery shows it: a volume opened through its disk
                # would be found again under the node, opened a second time (another KDF run) and mapped
                # over the disk rather than the partition.
                raise VolumeWaiting(f"waiting for the kernel to show partition {number} of {region.path}")
            location = Location(region.path, region.offset, region.size)
            status = status.model_copy(
                update={
                    "phase": VolumePhase.PROVISIONED,
                    "location": region.path,
                    "offset": region.offset,
                    "size": region.size,
                    "partition_index": number,
                }
            )
        else:
            return status.model_copy(update={"phase": VolumePhase.MISSING, "location": ""})
        if status.phase in (VolumePhase.WAITING, VolumePhase.MISSING):
            status = status.model_copy(update={"phase": VolumePhase.LOCATED})
        if status.phase == VolumePhase.LOCATED:
            status = status.model_copy(update={"phase": VolumePhase.PROVISIONED})
        progress.status = status

        if config.encryption is None:
            try:
                device = await self._services.loop_for(
                    item.volume_id, location.path, location.offset, location.size or 0
                )
            except LoopError as error:  # another program's loop device over the bytes (left_attached)
                raise VolumeError(str(error.strerror), retryable=True) from error
            status = status.model_copy(update={"phase": VolumePhase.PREPARED, "mount_location": device})
        else:
            status = await self._prepare_encrypted(item, status, location, env)
        progress.status = status
        meta = next(
            (v for v in discovered if v.partition_label == META_PARTITION_LABEL and not v.error), None
        )
        return await self._format(
            item,
            status,
            MetaPartition(meta.dev_path, offset=meta.offset) if meta is not None else None,
            _marked_volume(item, status, disks),
        )

    async def _whole_disk(
        self, item: _Work, discovered: Sequence[DiscoveredVolumeSpec], disks: Sequence[DiskSpec]
    ) -> DiscoveredVolumeSpec:
        """A disk volume's disk as a discovered volume (`DiskClaims.take`)."""
        if not disks:
            raise VolumeWaiting("waiting for disk discovery")
        try:
            return whole_disk(self._disks.take(item.volume_id), discovered)
        except DiskVolumeError as error:
            raise VolumeError(str(error), retryable=error.retryable) from error

    async def _existing(
        self,
        item: _Work,
        progress: _Progress,
        status: VolumeStatusSpec,
        discovered: Sequence[DiscoveredVolumeSpec],
        disks: Sequence[DiskSpec],
    ) -> VolumeStatusSpec:
        """An existing volume: located by its volume selector, probed, given a device; ready as it is.

        This path has no provisioning, encryption, mkfs or grow step: an existing volume is never written.
        """
        try:
            found = await anyio.to_thread.run_sync(locate_existing, item.config, discovered, disks)
            if found is None:
                if not disks:
                    raise VolumeWaiting("waiting for disk discovery")
                return status.model_copy(update={"phase": VolumePhase.MISSING, "location": ""})
            status = status.model_copy(
                update={
                    "phase": VolumePhase.LOCATED,
                    "location": found.dev_path,
                    "offset": found.offset,
                    "size": found.size,
                    "parent_location": found.parent,
                    "partition_index": found.partition_index,
                    "partition_uuid": found.partition_uuid,
                    "uuid": found.uuid,
                }
            )
            progress.status = status
            owner = self._disks.ready_on(found.parent or found.dev_path)
            if owner is not None:  # a disk volume's filesystem: mounted once, by that volume
                raise ExistingVolumeError(
                    f"the volume selector matches {found.dev_path}, the disk of the disk volume {owner} of"
                    " this config: it is not mounted a second time",
                    retryable=True,
                )
            # any region another volume is on (by path and bytes, whatever its label), unless ready there
            await refuse_taken_region(item.volume_id, found, self._claimed, self._statuses, self._located)
            filesystem = await anyio.to_thread.run_sync(probe_filesystem, found)
            refuse_swap(filesystem)
            device = await device_for(
                self._services, item.volume_id, found, read_only=item.config.read_only,
                mount_target=item.config.mount_target,
                devices={v.dev_path for v in discovered} | {d.dev_path for d in disks},
            )  # fmt: skip
        except ExistingVolumeError as error:
            raise VolumeError(str(error), retryable=error.retryable) from error
        except OSError as error:
            raise VolumeError(f"existing volume: {error}", retryable=True) from error
        return status.model_copy(
            update={"phase": VolumePhase.READY, "mount_location": device, "filesystem": filesystem}
        )

    async def _prepare_encrypted(
        self, item: _Work, status: VolumeStatusSpec, location: Location, env: KeyEnvironment
    ) -> VolumeStatusSpec:
        config = item.config
        encryption = config.encryption
        assert encryption is not None
        keys = slot_keys(item.volume_id, config, item.secrets, env)
        digest = keys_digest(config, item.secrets, keys)
        if (
            keys
            and all(key.provider is None for key in keys)
            and any(key.reason == salt_reason(env) for key in keys)
        ):
            raise VolumeWaiting(
                "waiting for the STATE salt (keys are locked to STATE)", waiting_for=("STATE",)
            )
        if (
            keys
            and all(key.provider is None for key in keys)
            and any(key.reason == NODE_UUID_PENDING for key in keys)
        ):
            # not "no node UUID" yet: META (tag 0x0f may override SMBIOS) has not been read
            raise VolumeWaiting(NODE_UUID_PENDING)
        if (
            keys
            and all(key.provider is None for key in keys)
            and any(key.reason == TPM_PHASE_PENDING for key in keys)
        ):
            raise VolumeWaiting(TPM_PHASE_PENDING)  # PCR 11 not looked at yet: it may be about to change
        opened = self._services.opened.get(item.volume_id)
        if (
            opened is None
            or not _same_volume(opened.location, location)
            or not await self._services.is_active(item.volume_id)
        ):
            try:
                with step_time_limit(ENCRYPTION_TIME_LIMIT):
                    # Blank means provably blank (no signature ours or libblkid's, first MiB zero), or
                    # our own LUKS2 format cut short (a header no key can open, nothing else there).
                    content = await anyio.to_thread.run_sync(
                        examine_region, Region(location.path, location.offset, location.size or 0)
                    )
                    synced = ""  # after an open, the KeySlotSyncer syncs the slots
                    if content.kind is ContentKind.INTERRUPTED_FORMAT:
                        log.warning(
                            "an earlier LUKS2 format was interrupted; formatting again", volume=item.volume_id
                        )
                    if content.kind in (ContentKind.BLANK, ContentKind.INTERRUPTED_FORMAT):
                        backend = (await self._services.activator()).backend
                        problem = cipher_problem(backend, encryption.cipher)
                        if problem is not None:  # a header that opens only elsewhere: not written
                            raise VolumeError(problem, retryable=False)
                        result = await format_encrypted(location, encryption, keys)
                        self._fresh.add(item.volume_id)
                        synced = digest  # formatting adds every other configured key itself
                    elif content.kind is ContentKind.LUKS:
                        result = await open_encrypted(location, encryption, keys, sync=False)
                    else:
                        raise VolumeError(
                            f"block dev type mismatch: {content.describe()} != luks", retryable=False
                        )
                    device = await self._services.activate(
                        item.volume_id, location, result.volume_key, activation_flags(encryption)
                    )
            except NoUsableKeyError as error:
                raise VolumeError(str(error), retryable=True) from error
            except TimeoutError as error:
                raise VolumeError("encryption step timed out", retryable=True) from error
            except (Luks2Error, ActivationError, KeyProviderError, OSError) as error:
                raise VolumeError(f"encryption: {error}", retryable=True) from error
            opened = OpenVolume(
                location=location,
                result=result,
                device=device,
                keys_digest=synced,
                ignored_flags=await self._services.ignored_flags(item.volume_id),
            )
            self._services.opened[item.volume_id] = opened
        return status.model_copy(
            update={
                "phase": VolumePhase.PREPARED,
                "mount_location": opened.device,
                "encryption_provider": encryption.provider,
                "encryption_slot": opened.result.slot,
                "configured_encryption_keys": tuple(k.kind.value for k in encryption.keys),
                "encryption_failed_syncs": tuple(opened.result.failed_syncs),
                "locked_to_state": any(k.lock_to_state for k in encryption.keys),
                "tpm_pcrs": tuple(sorted({p for k in encryption.keys for p in k.tpm_pcrs})),
                "encryption_ignored_options": opened.ignored_flags,
            }
        )

    async def _format(
        self, item: _Work, status: VolumeStatusSpec, meta: MetaPartition | None, partition: MarkedVolume
    ) -> VolumeStatusSpec:
        """mkfs-if-empty, and mkfs again where volumed's own mkfs was interrupted (a power cut).

        The mark that tells an interrupted mkfs from somebody's filesystem is written (and fsync'ed) before
        mkfs starts and removed once the new filesystem is flushed: a token in the LUKS2 header of an
        encrypted volume, an entry in META for an unencrypted one, keyed by the partition's GPT UUID or a
        whole disk's identity (`_mkfs_mark`). Without a META partition an unencrypted volume is formatted
        unmarked, as before.
        """
        if is_existing(item.config) or is_directory(item.config):  # never reached: they have their own path
            raise VolumeError("refusing to format a volume volumed does not make", retryable=False)
        if status.phase == VolumePhase.READY:
            return status
        device = status.mount_location
        wanted = item.config.filesystem
        opened = self._services.opened.get(item.volume_id)
        header = opened.location if opened is not None else None  # encrypted: the mkfs mark lives there
        if wanted == NO_FILESYSTEM:  # a raw volume: never formatted, ready once it exists (and is opened)
            return await self._raw_ready(item, status, header)
        try:
            interrupted = header is not None and await mkfs_pending(header)
        except Luks2Error as error:
            raise VolumeError(f"mkfs: {error}", retryable=True) from error
        signature = None
        if not interrupted:
            # The decrypted view of a LUKS2 volume cannot be proven blank (a fresh one is noise, one holding
            # raw data looks alike): there mkfs runs only on the mkfs-pending mark that volumed's LUKS2
            # format commits with the key slot (`format_encrypted`), i.e. volumed made this volume and it
            # never got its filesystem. Without the mark and without a signature it is somebody's data.
            content = await anyio.to_thread.run_sync(
                partial(examine_region, Region.whole(device), zero_check=header is None)
            )
            signature = content.signature
            if signature is None and content.kind is not ContentKind.BLANK:
                raise VolumeError(
                    f"filesystem type mismatch: {content.describe()} != {wanted}", retryable=False
                )
            if signature is None and header is not None:
                raise VolumeError(
                    f"filesystem type mismatch: unknown data != {wanted} (no signature in the opened LUKS2 "
                    "volume, and no mark that volumed formatted it and never made its filesystem)",
                    retryable=False,
                )
        if signature is not None and header is None and meta is not None:
            interrupted = await self._interrupted(item, meta, partition, signature)
            if interrupted:
                signature = None
        if signature is None:
            if interrupted and item.volume_id in self._fresh:
                log.info("making the filesystem of the new LUKS2 volume", volume=item.volume_id)
            elif interrupted:
                log.warning(
                    "an earlier mkfs was interrupted; making the filesystem again", volume=item.volume_id
                )
            elif header is None and meta is None:
                log.warning(
                    "no mkfs mark (no META partition): a power cut during this mkfs could not be told apart"
                    " from data",
                    volume=item.volume_id,
                )
            await self._make_filesystem(item, device, header, meta, partition)
            self._fresh.discard(item.volume_id)
        elif signature.type.value != wanted:
            raise VolumeError(
                f"filesystem type mismatch: {signature.type.value} != {wanted}", retryable=False
            )
        status = status.model_copy(update={"filesystem": wanted})
        if wanted != SWAP_FILESYSTEM:  # a swap area is not grown
            status = await self._grow_once(item, status)
        return status.model_copy(update={"phase": VolumePhase.READY})

    async def _raw_ready(
        self, item: _Work, status: VolumeStatusSpec, header: Location | None
    ) -> VolumeStatusSpec:
        """A raw volume is ready as it is, grown once per start (partition and mapping) when its config says
        ``grow``; the mkfs-pending mark a new LUKS2 header carries is removed (no mkfs follows, and the mark
        would let a later mkfs take the raw data for its own unfinished one)."""
        try:
            if header is not None and await mkfs_pending(header):
                await set_mkfs_pending(header, False)
        except Luks2Error as error:
            raise VolumeError(f"clearing the mkfs mark: {error}", retryable=True) from error
        self._fresh.discard(item.volume_id)
        status = status.model_copy(update={"filesystem": NO_FILESYSTEM})
        status = await self._grow_once(item, status)
        return status.model_copy(update={"phase": VolumePhase.READY})

    async def _grow_once(self, item: _Work, status: VolumeStatusSpec) -> VolumeStatusSpec:
        """Once per start, as Talos: the partition, then the open mapping, then the filesystem (if any)."""
        if item.volume_id in self._grown:
            return status
        try:
            growth = await grow_opened_volume(self._services, item.volume_id, item.config, status)
        except GrowError as error:
            raise VolumeError(f"grow: {error}", retryable=True) from error
        self._grown.add(item.volume_id)
        if growth is not None and growth.grew:
            status = status.model_copy(update={"size": growth.partition.new_size})
        return status

    async def _interrupted(
        self, item: _Work, meta: MetaPartition, partition: MarkedVolume, signature: Signature
    ) -> bool:
        """Whether META marks ``signature`` as volumed's unfinished mkfs of this partition.

        When that cannot be told (META unreadable, its tag not ours, the partition unknown) the answer is
        no: the signature is taken as it is, and nothing is formatted over it.
        """
        try:
            return await anyio.to_thread.run_sync(interrupted_mkfs, meta, partition, signature)
        except (MetaError, ForeignValueError, MkfsMarkError) as error:
            log.warning("cannot read the mkfs mark in META", volume=item.volume_id, error=str(error))
            return False

    async def _make_filesystem(
        self,
        item: _Work,
        device: str,
        header: Location | None,
        meta: MetaPartition | None,
        partition: MarkedVolume,
    ) -> None:
        wanted = item.config.filesystem
        fs_uuid = str(uuid.uuid4())  # the mark names it: a signature with another UUID is not our mkfs
        try:
            if header is not None:
                await set_mkfs_pending(header, True)
            elif meta is not None:
                await anyio.to_thread.run_sync(mark_mkfs, meta, partition, wanted, fs_uuid)
            await anyio.to_thread.run_sync(
                partial(make_filesystem, device, wanted, label=item.volume_id[:12], uuid=fs_uuid)
            )
            await anyio.to_thread.run_sync(_flush, device)  # the filesystem is durable before the mark goes
            if header is not None:
                await set_mkfs_pending(header, False)
            elif meta is not None:
                await anyio.to_thread.run_sync(unmark_mkfs, meta, partition)
        except (FilesystemError, Luks2Error, MkfsMarkError) as error:
            raise VolumeError(f"mkfs: {error}", retryable=True) from error
        except OSError as error:
            raise VolumeError(f"mkfs: cannot flush {device}: {error.strerror}", retryable=True) from error


def _marked_volume(item: _Work, status: VolumeStatusSpec, disks: Sequence[DiskSpec]) -> MarkedVolume:
    """What the volume's mkfs mark names: its partition as located (a partition of an image file is found
    by offset, else by number), or for a whole-disk volume its disk."""
    if is_disk_volume(item.config):
        disk = next((d for d in disks if d.dev_path == status.location), None)
        if disk is None:  # gone since it was located: retried with the next disk list
            raise VolumeError(f"the disk {status.location} is no longer listed", retryable=True)
        return VolumeDisk.of(item.volume_id, disk)
    return VolumePartition(
        volume_id=item.volume_id,
        label=item.config.partition_label,
        path=status.location,
        offset=status.offset,
        size=status.size,
        disk=status.parent_location or status.location,
        number=status.partition_index,
    )


def _flush(device: str) -> None:
    """fsync a block device (its cache and the disk's write cache) or an image file."""
    with Region.whole(device).open() as handle:
        handle.sync()


def _inputs_digest(item: _Work, discovered: Sequence[DiscoveredVolumeSpec], env: KeyEnvironment) -> str:
    found = [
        v.model_dump(mode="json")
        for v in discovered
        if v.partition_label == item.config.partition_label or is_existing(item.config)  # any may match
    ]
    material = {"config": item.config.model_dump(mode="json"), "found": found, "uuid": env.node_uuid}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
