"""The volume subsystem: every built-in controller on one runtime, started and stopped as a unit."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import structlog

from volumed.keys import KeyGate
from volumed.resources import registry
from volumed.runtime import DefinitionConflictError, ResourceRegistry, in_memory_state
from volumed.runtime.controller import RegistrationError, Runtime
from volumed.storage.activation import mapping_name

from ._plugins import Plugin, PluginError, check_outputs_described
from .block._discovery_controller import DiscoveryController
from .block._formatter import RETRY_INTERVAL, VolumeFormatter
from .block._key_slot_syncer import KeySlotSyncer
from .block._mounter import Mounter, MountRequester
from .block._services import VolumeServices
from .block._swap import SwapActivator
from .block._swap_status import SwapStatusController
from .config._loader import ConfigLoader
from .keys._boot_phase import BootPhaseController, BootPhases
from .keys._encryption_salt import EncryptionSaltController
from .keys._key_resolver import KeyResolver
from .keys._providers import DEFAULT_TCTI, KeyEnvironment
from .system._meta_store import MetaStore
from .system._system_information import SystemInformationController
from .system._zswap import ZswapController

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from volumed.runtime import State
    from volumed.storage.activation import BackendChoice

log = structlog.get_logger("volumed.subsystem")


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
        tpm_boot_phases: which PCR 11 phase words volumed extends (``enter-machined`` when the UKI signed
            it, ``start-the-world`` once the volumes are open): see `BootPhases`.
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
    tpm_boot_phases: BootPhases = BootPhases.BOTH
    kms_ca_file: str | None = None
    retry_interval: float = RETRY_INTERVAL
    poll_interval: float = 10.0  # the config file's fallback poll: inotify wakes the loader on changes
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
    boot_phase: BootPhaseController | None = None
    registry: ResourceRegistry = field(default_factory=registry)
    """The resource types `volumed get` serves: the built-in ones and the plugins'."""


def build_subsystem(
    options: SubsystemOptions, *, state: State | None = None, plugins: Sequence[Plugin] = ()
) -> Subsystem:
    """Every built-in controller, then every plugin's, registered on a runtime over ``state`` (in memory by
    default).

    Image builders add their own controllers as plugins (see `Plugin`), or with ``subsystem.runtime.register``
    before running it.

    Raises:
        PluginError: a plugin's controller cannot be registered (a name taken, an output claimed twice,
            malformed declarations), its definitions clash with others, or it publishes an undescribed type.
    """
    state = state if state is not None else in_memory_state()
    runtime = Runtime(state)
    services = VolumeServices(
        backend=options.backend, root=options.root, runtime_dir=options.state_dir / "fuse"
    )
    gate = KeyGate()
    env = KeyEnvironment(
        tcti=options.tcti,
        kms_ca_file=options.kms_ca_file,
        tpm_pcr_public_key=options.tpm_pcr_public_key,
        tpm_pcr_signature=options.tpm_pcr_signature,
        tpm_gate=gate,
    )
    boot_phase = BootPhaseController(
        gate,
        tcti=options.tcti,
        public_key=Path(options.tpm_pcr_public_key) if options.tpm_pcr_public_key else None,
        signature=Path(options.tpm_pcr_signature) if options.tpm_pcr_signature else None,
        phases=options.tpm_boot_phases,
    )
    for controller in (
        ConfigLoader(options.config, poll_interval=options.poll_interval),
        MetaStore(),
        SystemInformationController(node_uuid=options.node_uuid, dmi_path=options.dmi_path),
        ZswapController(originals_file=options.state_dir / "zswap-originals.json"),
        DiscoveryController(options.disks, interval=options.discovery_interval),
        boot_phase,
        KeyResolver(env),
        EncryptionSaltController(),
        VolumeFormatter(services, env, retry_interval=options.retry_interval),
        KeySlotSyncer(services, env, retry_interval=options.retry_interval),
        MountRequester(),
        Mounter(services),
        SwapActivator(services),
        SwapStatusController(),
    ):
        runtime.register(controller)
    types = registry()
    for plugin in plugins:
        add_plugin(runtime, types, plugin)
    return Subsystem(state, runtime, services, options, runtime.controllers, boot_phase, types)


def add_plugin(runtime: Runtime, types: ResourceRegistry, plugin: Plugin) -> None:
    """Register ``plugin``'s definitions in ``types`` and its controllers on ``runtime``.

    Raises:
        PluginError: see `build_subsystem`.
    """
    for definition in plugin.definitions:
        try:
            types.register(definition)
        except DefinitionConflictError as error:
            raise PluginError(f"plugin {plugin.name!r}: {error}") from error
    check_outputs_described(plugin, [definition.type for definition in types])
    for controller in plugin.controllers:
        try:
            runtime.register(controller)
        except RegistrationError as error:
            raise PluginError(f"plugin {plugin.name!r}: {error}") from error


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
        if subsystem.boot_phase is not None:
            await subsystem.boot_phase.close_at_stop()
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
    pending = activator.leftovers()
    failed: dict[str, ActivationError] = {}
    while pending:  # a view mounted below another's (u-data in /var) goes first: busy ones are tried again
        failed = {}
        for name in pending:
            try:
                activator.release(name)
            except ActivationError as error:
                failed[name] = error
            else:
                log.info(
                    "released a view of this run"
                    if name in own
                    else "released a view left by an earlier run",
                    mapping=name,
                )
        if len(failed) == len(pending):
            break
        pending = list(failed)
    for name, why in failed.items():
        if name in own:
            log.error(
                "a view of this run stays up: its volume could not be closed", mapping=name, error=str(why)
            )
        else:
            log.error("a view left by an earlier run cannot be released", mapping=name, error=str(why))
