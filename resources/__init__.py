"""Typed resources of the volume subsystem: specs as pydantic models and their definitions.

`DEFINITIONS` lists every type; `registry()` returns a `ResourceRegistry` holding them all.
"""

from typing import Any

from volumed.runtime import ResourceDefinition, ResourceRegistry

from ._namespaces import BLOCK as BLOCK
from ._namespaces import CONFIG as CONFIG
from ._namespaces import SYSTEM as SYSTEM
from .block._discovered_volume import DiscoveredVolumeDefinition as DiscoveredVolumeDefinition
from .block._discovered_volume import DiscoveredVolumeSpec as DiscoveredVolumeSpec
from .block._disk import DiskDefinition as DiskDefinition
from .block._disk import DiskSpec as DiskSpec
from .block._encryption_salt import ENCRYPTION_SALT_ID as ENCRYPTION_SALT_ID
from .block._encryption_salt import EncryptionSaltDefinition as EncryptionSaltDefinition
from .block._encryption_salt import EncryptionSaltSpec as EncryptionSaltSpec
from .block._key_slot_status import KeySlotStatusDefinition as KeySlotStatusDefinition
from .block._key_slot_status import KeySlotStatusSpec as KeySlotStatusSpec
from .block._mount import MountStatusDefinition as MountStatusDefinition
from .block._mount import MountStatusSpec as MountStatusSpec
from .block._mount import VolumeMountRequestDefinition as VolumeMountRequestDefinition
from .block._mount import VolumeMountRequestSpec as VolumeMountRequestSpec
from .block._swap_status import SwapStatusDefinition as SwapStatusDefinition
from .block._swap_status import SwapStatusSpec as SwapStatusSpec
from .block._volume_config import NO_FILESYSTEM as NO_FILESYSTEM
from .block._volume_config import SWAP_FILESYSTEM as SWAP_FILESYSTEM
from .block._volume_config import EncryptionConfigSpec as EncryptionConfigSpec
from .block._volume_config import KeyKind as KeyKind
from .block._volume_config import KeySlotSpec as KeySlotSpec
from .block._volume_config import PbkdfSpec as PbkdfSpec
from .block._volume_config import ProvisioningConfigSpec as ProvisioningConfigSpec
from .block._volume_config import VolumeConfigDefinition as VolumeConfigDefinition
from .block._volume_config import VolumeConfigSpec as VolumeConfigSpec
from .block._volume_config import VolumeType as VolumeType
from .block._volume_key_secrets import StaticKeySpec as StaticKeySpec
from .block._volume_key_secrets import VolumeKeySecretsDefinition as VolumeKeySecretsDefinition
from .block._volume_key_secrets import VolumeKeySecretsSpec as VolumeKeySecretsSpec
from .block._volume_key_status import KeyReadinessSpec as KeyReadinessSpec
from .block._volume_key_status import VolumeKeyStatusDefinition as VolumeKeyStatusDefinition
from .block._volume_key_status import VolumeKeyStatusSpec as VolumeKeyStatusSpec
from .block._volume_status import VolumePhase as VolumePhase
from .block._volume_status import VolumeStatusDefinition as VolumeStatusDefinition
from .block._volume_status import VolumeStatusSpec as VolumeStatusSpec
from .block._zswap import ZSWAP_ID as ZSWAP_ID
from .block._zswap import ZswapConfigDefinition as ZswapConfigDefinition
from .block._zswap import ZswapConfigSpec as ZswapConfigSpec
from .block._zswap import ZswapStatusDefinition as ZswapStatusDefinition
from .block._zswap import ZswapStatusSpec as ZswapStatusSpec
from .config._config_status import CONFIG_STATUS_ID as CONFIG_STATUS_ID
from .config._config_status import ConfigStatusDefinition as ConfigStatusDefinition
from .config._config_status import ConfigStatusSpec as ConfigStatusSpec
from .system._meta_key import MetaKeyDefinition as MetaKeyDefinition
from .system._meta_key import MetaKeySpec as MetaKeySpec
from .system._meta_key import meta_key_id as meta_key_id
from .system._meta_loaded import META_LOADED_ID as META_LOADED_ID
from .system._meta_loaded import MetaLoadedDefinition as MetaLoadedDefinition
from .system._meta_loaded import MetaLoadedSpec as MetaLoadedSpec
from .system._system_information import SYSTEM_INFORMATION_ID as SYSTEM_INFORMATION_ID
from .system._system_information import SystemInformationDefinition as SystemInformationDefinition
from .system._system_information import SystemInformationSpec as SystemInformationSpec
from .system._system_information import UUIDSource as UUIDSource
from .system._tpm_phase import TPM_PHASE_ID as TPM_PHASE_ID
from .system._tpm_phase import TPMPhaseDefinition as TPMPhaseDefinition
from .system._tpm_phase import TPMPhaseSpec as TPMPhaseSpec
from .system._tpm_phase import TPMWindow as TPMWindow

DEFINITIONS: tuple[ResourceDefinition[Any], ...] = (
    DiskDefinition,
    DiscoveredVolumeDefinition,
    VolumeConfigDefinition,
    VolumeKeySecretsDefinition,
    VolumeStatusDefinition,
    VolumeKeyStatusDefinition,
    KeySlotStatusDefinition,
    SwapStatusDefinition,
    VolumeMountRequestDefinition,
    MountStatusDefinition,
    EncryptionSaltDefinition,
    ZswapConfigDefinition,
    ZswapStatusDefinition,
    SystemInformationDefinition,
    MetaKeyDefinition,
    MetaLoadedDefinition,
    TPMPhaseDefinition,
    ConfigStatusDefinition,
)


def registry() -> ResourceRegistry:
    """A registry holding every resource type of the volume subsystem."""
    return ResourceRegistry(DEFINITIONS)


__all__ = [
    "BLOCK",
    "CONFIG",
    "CONFIG_STATUS_ID",
    "DEFINITIONS",
    "ENCRYPTION_SALT_ID",
    "META_LOADED_ID",
    "NO_FILESYSTEM",
    "SWAP_FILESYSTEM",
    "SYSTEM",
    "SYSTEM_INFORMATION_ID",
    "TPM_PHASE_ID",
    "ZSWAP_ID",
    "ConfigStatusDefinition",
    "ConfigStatusSpec",
    "DiscoveredVolumeDefinition",
    "DiscoveredVolumeSpec",
    "DiskDefinition",
    "DiskSpec",
    "EncryptionConfigSpec",
    "EncryptionSaltDefinition",
    "EncryptionSaltSpec",
    "KeyKind",
    "KeyReadinessSpec",
    "KeySlotSpec",
    "KeySlotStatusDefinition",
    "KeySlotStatusSpec",
    "MetaKeyDefinition",
    "MetaKeySpec",
    "MetaLoadedDefinition",
    "MetaLoadedSpec",
    "MountStatusDefinition",
    "MountStatusSpec",
    "PbkdfSpec",
    "ProvisioningConfigSpec",
    "StaticKeySpec",
    "SwapStatusDefinition",
    "SwapStatusSpec",
    "SystemInformationDefinition",
    "SystemInformationSpec",
    "TPMPhaseDefinition",
    "TPMPhaseSpec",
    "TPMWindow",
    "UUIDSource",
    "VolumeConfigDefinition",
    "VolumeConfigSpec",
    "VolumeKeySecretsDefinition",
    "VolumeKeySecretsSpec",
    "VolumeKeyStatusDefinition",
    "VolumeKeyStatusSpec",
    "VolumeMountRequestDefinition",
    "VolumeMountRequestSpec",
    "VolumePhase",
    "VolumeStatusDefinition",
    "VolumeStatusSpec",
    "VolumeType",
    "ZswapConfigDefinition",
    "ZswapConfigSpec",
    "ZswapStatusDefinition",
    "ZswapStatusSpec",
    "meta_key_id",
    "registry",
]
