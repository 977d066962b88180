"""The controllers of the volume subsystem: thin wiring of resources to storage and keys.

`build_subsystem` registers every built-in controller on one runtime; `running` runs it (and unmounts and
closes everything on exit). Image builders register their own controllers on ``subsystem.runtime`` too.
"""

from ._convergence import Convergence as Convergence
from ._convergence import convergence as convergence
from ._convergence import wait_settled as wait_settled
from ._plugins import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from ._plugins import Plugin as Plugin
from ._plugins import PluginError as PluginError
from ._plugins import entry_point_plugins as entry_point_plugins
from ._plugins import load_plugin as load_plugin
from ._subsystem import Subsystem as Subsystem
from ._subsystem import SubsystemOptions as SubsystemOptions
from ._subsystem import build_subsystem as build_subsystem
from ._subsystem import running as running
from .block._discovery_controller import DiscoveryController as DiscoveryController
from .block._formatter import VolumeFormatter as VolumeFormatter
from .block._key_slot_syncer import KeySlotSyncer as KeySlotSyncer
from .block._mounter import Mounter as Mounter
from .block._mounter import MountRequester as MountRequester
from .config._loader import ConfigLoader as ConfigLoader
from .config._loader import staged_path as staged_path
from .keys._boot_phase import BootPhaseController as BootPhaseController
from .keys._boot_phase import BootPhases as BootPhases
from .keys._encryption_salt import EncryptionSaltController as EncryptionSaltController
from .keys._key_resolver import KeyResolver as KeyResolver
from .system._meta_store import MetaStore as MetaStore
from .system._system_information import SystemInformationController as SystemInformationController
from .system._zswap import ZswapController as ZswapController

__all__ = [
    "ENTRY_POINT_GROUP",
    "BootPhaseController",
    "BootPhases",
    "ConfigLoader",
    "Convergence",
    "DiscoveryController",
    "EncryptionSaltController",
    "KeyResolver",
    "KeySlotSyncer",
    "MetaStore",
    "MountRequester",
    "Mounter",
    "Plugin",
    "PluginError",
    "Subsystem",
    "SubsystemOptions",
    "SystemInformationController",
    "VolumeFormatter",
    "ZswapController",
    "build_subsystem",
    "convergence",
    "entry_point_plugins",
    "load_plugin",
    "running",
    "staged_path",
    "wait_settled",
]
