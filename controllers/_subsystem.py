"""The volume subsystem: every built-in controller on one runtime, started and stopped as a unit."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import structlog

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
from volumed.runtime import Kind, NotFoundError, Pointer, in_memory_state
from volumed.runtime.controller import Runtime
from volumed.storage.activation import mapping_name

from .block._discovery_controller import DiscoveryController
from .block._formatter import RETRY_INTERVAL, VolumeFormatter
from .block._key_slot_syncer import KeySlotSyncer
from .block._mounter import Mounter, MountRequester
from .block._services import VolumeServices
from .config._loader import ConfigLoader
from .keys._encryption_salt import EncryptionSaltController
from .keys._key_resolver import KeyResolver
from .keys._providers import DEFAULT_TCTI, KeyEnvironment
from .system._meta_store import MetaStore
from .system._system_information import SystemInformationController

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from volumed.runtime import Resource, State
    from volumed.storage.activation import BackendChoice

log = structlog.get_logger("volumed.subsystem")

TERMINAL_PHASES: Final = (VolumePhase.READY, VolumePhase.FAILED, VolumePhase.MISSING)


@dataclass(frozen=True)
class SubsystemOptions:
    """How `volumed run` (or an embedding init) starts the subsystem.

    Attributes:
        config: the machine config file (None: no config; STATE then comes from META).
        disks: disk image files to use instead of the node's block devices.
        backend: how unlocked volumes become block devices (``auto``, ``dm``, ``fuse``).
        root: mount targets are under this directory.
        state_dir: where runtime files live (fuse views, the API socket unless given).
        node_uuid: overrides the SMBIOS UUID and META tag 0x0f.
        tpm_pcr_public_key, tpm_pcr_signature: the UKI's PCR-signing key and PCR 11 signature JSON for TPM
            keys under Talos' signed policy (None: systemd-stub's files under /.extra).
    """

    config: Path | None = None
    disks: Sequence[str] = ()
    backend: BackendChoice = "auto"
    root: Path = Path("/")
    state_dir: Path = Path("/run/volumed")
    node_uuid: str | None = None
    tcti: str = DEFAULT_TCTI
    tpm_pcr_public_key: str | None = None
    tpm_pcr_signature: str | None = None
    kms_ca_file: str | None = None
    retry_interval: float = RETRY_INTERVAL
    poll_interval: float = 1.0
    discovery_interval: float = 5.0
    dmi_path: str = "/sys/class/dmi/id/product_uuid"


@dataclass
class Subsystem:
    """A built subsystem: its state, runtime and the handles its controllers hold."""

    state: State
    runtime: Runtime
    services: VolumeServices
    options: SubsystemOptions
    controllers: list[str] = field(default_factory=list)


def build_subsystem(options: SubsystemOptions, *, state: State | None = None) -> Subsystem:
    """Every built-in controller registered on a runtime over ``state`` (in memory by default).

    Image builders add their own controllers with ``subsystem.runtime.register(...)`` before running it.
    """
    state = state if state is not None else in_memory_state()
    runtime = Runtime(state)
    services = VolumeServices(
        backend=options.backend, root=options.root, runtime_dir=options.state_dir / "fuse"
    )
    env = KeyEnvironment(
        tcti=options.tcti,
        kms_ca_file=options.kms_ca_file,
        tpm_pcr_public_key=options.tpm_pcr_public_key,
        tpm_pcr_signature=options.tpm_pcr_signature,
    )
    for controller in (
        ConfigLoader(options.config, poll_interval=options.poll_interval),
        MetaStore(),
        SystemInformationController(node_uuid=options.node_uuid, dmi_path=options.dmi_path),
        DiscoveryController(options.disks, interval=options.discovery_interval),
        KeyResolver(env),
        EncryptionSaltController(),
        VolumeFormatter(services, env, retry_interval=options.retry_interval),
        KeySlotSyncer(services, env, retry_interval=options.retry_interval),
        MountRequester(),
        Mounter(services),
    ):
        runtime.register(controller)
    return Subsystem(state, runtime, services, options, runtime.controllers)


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
                return False
            status = self.statuses[volume_id]
            if status.encryption_provider and self.synced.get(volume_id) != status.encryption_failed_syncs:
                return False  # key slots not synced yet, or the sync's outcome not yet in the status
        return True

    @property
    def ok(self) -> bool:
        """Every configured volume is ready (and there is at least one)."""
        return bool(self.configured) and all(
            v in self.statuses and self.statuses[v].phase == VolumePhase.READY for v in self.configured
        )


async def convergence(state: State) -> Convergence:
    """A snapshot of the volumes' progress, read from the state."""
    configs: list[Resource[VolumeConfigSpec]] = await state.list(Kind(BLOCK, VolumeConfigDefinition.type))
    statuses: list[Resource[VolumeStatusSpec]] = await state.list(Kind(BLOCK, VolumeStatusDefinition.type))
    mounts: list[Resource[MountStatusSpec]] = await state.list(Kind(BLOCK, MountStatusDefinition.type))
    syncs: list[Resource[KeySlotStatusSpec]] = await state.list(Kind(BLOCK, KeySlotStatusDefinition.type))
    try:
        config: Resource[ConfigStatusSpec] | None = await state.get(
            Pointer(CONFIG, ConfigStatusDefinition.type, CONFIG_STATUS_ID)
        )
    except NotFoundError:
        config = None
    return Convergence(
        statuses={s.id: s.spec for s in statuses},
        configured={c.id for c in configs},
        mounted={m.spec.volume_id for m in mounts},
        wanted_mounts={c.id for c in configs if c.spec.mount_target},
        config_errors=config.spec.errors if config is not None else (),
        synced={s.id: s.spec.failed_syncs for s in syncs if s.spec.keys_digest},
    )


async def wait_settled(state: State, *, poll: float = 0.2) -> Convergence:
    """Wait until every configured volume is settled (see `Convergence.settled`)."""
    while True:
        snapshot = await convergence(state)
        if snapshot.settled:
            return snapshot
        await anyio.sleep(poll)


@asynccontextmanager
async def running(subsystem: Subsystem) -> AsyncIterator[Subsystem]:
    """Run the subsystem for the duration of an ``async with``; on exit everything is unmounted and closed."""
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(subsystem.runtime.run)
            try:
                yield subsystem
            finally:
                tg.cancel_scope.cancel()
    finally:
        own = frozenset(mapping_name(volume_id) for volume_id in subsystem.services.opened)
        await subsystem.services.close_all()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(release_leftover_views, subsystem.services.runtime_dir, own)


def release_leftover_views(runtime_dir: Path, own: frozenset[str] = frozenset()) -> None:
    """Tear down the FUSE views still in ``runtime_dir`` once every volume of this run is closed.

    What is left then is not this run's: a killed run's view that no volume took over (it then failed to open,
    or left the config), with the filesystem still mounted from it. Nothing else may use it: the state
    directory has one owner.
    """
    from volumed.storage.activation import ActivationError, FuseActivator

    activator = FuseActivator(runtime_dir=runtime_dir)
    for name in activator.leftovers():
        try:
            activator.release(name)
        except ActivationError as error:
            if name in own:
                log.error(
                    "a view of this run stays up: its volume could not be closed",
                    mapping=name,
                    error=str(error),
                )
            else:
                log.error("a view left by an earlier run cannot be released", mapping=name, error=str(error))
        else:
            log.info(
                "released a view of this run" if name in own else "released a view left by an earlier run",
                mapping=name,
            )
