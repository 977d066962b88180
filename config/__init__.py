"""Machine config documents (Talos v1.12's volume documents): models, validation, disk selectors.

Usable alone: no runtime, no storage. :func:`load_config` turns multi-document YAML into a
:class:`MachineConfig`; :func:`check_config` returns every issue instead of raising.
"""

import typing as _typing

from volumed._lazy import lazy_attributes as _lazy_attributes

from ._cel import SIZE_CONSTANTS as SIZE_CONSTANTS
from ._cel import DiskSelector as DiskSelector
from ._cel import compile_selector as compile_selector
from ._disk import DiskDescription as DiskDescription
from ._documents import DEFAULT_FILESYSTEM as DEFAULT_FILESYSTEM
from ._documents import EPHEMERAL as EPHEMERAL
from ._documents import IMAGECACHE as IMAGECACHE
from ._documents import MIN_USER_VOLUME_SIZE as MIN_USER_VOLUME_SIZE
from ._documents import STATE as STATE
from ._documents import USER_VOLUME_PREFIX as USER_VOLUME_PREFIX
from ._documents import USER_VOLUME_TYPES as USER_VOLUME_TYPES
from ._documents import DiskSelectorSpec as DiskSelectorSpec
from ._documents import FilesystemSpec as FilesystemSpec
from ._documents import ProvisioningSpec as ProvisioningSpec
from ._documents import UserVolumeConfigDocument as UserVolumeConfigDocument
from ._documents import VolumeConfigDocument as VolumeConfigDocument
from ._documents import VolumeDocument as VolumeDocument
from ._encryption import DEFAULT_CIPHER as DEFAULT_CIPHER
from ._encryption import DEFAULT_KEY_SIZE_BITS as DEFAULT_KEY_SIZE_BITS
from ._encryption import DEFAULT_TPM_PCRS as DEFAULT_TPM_PCRS
from ._encryption import PERF_OPTIONS as PERF_OPTIONS
from ._encryption import SUPPORTED_CIPHERS as SUPPORTED_CIPHERS
from ._encryption import SUPPORTED_KEY_SIZES_BITS as SUPPORTED_KEY_SIZES_BITS
from ._encryption import EncryptionKey as EncryptionKey
from ._encryption import EncryptionSpec as EncryptionSpec
from ._encryption import KeyKind as KeyKind
from ._encryption import KMSKey as KMSKey
from ._encryption import NodeIDKey as NodeIDKey
from ._encryption import Pbkdf as Pbkdf
from ._encryption import StaticKey as StaticKey
from ._encryption import TPMKey as TPMKey
from ._encryption import TPMOptions as TPMOptions
from ._errors import ConfigError as ConfigError
from ._errors import ConfigInvalidError as ConfigInvalidError
from ._errors import ConfigIssue as ConfigIssue
from ._errors import SelectorError as SelectorError
from ._legacy import LegacyEncryptionSpec as LegacyEncryptionSpec
from ._legacy import SystemDiskEncryption as SystemDiskEncryption
from ._limits import MAX_CONFIG_BYTES as MAX_CONFIG_BYTES
from ._meta_json import MetaEncryptionError as MetaEncryptionError
from ._meta_json import encryption_from_meta_json as encryption_from_meta_json
from ._meta_json import encryption_to_meta_json as encryption_to_meta_json
from ._other_volumes import ExistingVolumeConfigDocument as ExistingVolumeConfigDocument
from ._other_volumes import OtherDocument as OtherDocument
from ._other_volumes import RawVolumeConfigDocument as RawVolumeConfigDocument
from ._other_volumes import SwapVolumeConfigDocument as SwapVolumeConfigDocument
from ._other_volumes import ZswapConfigDocument as ZswapConfigDocument
from ._size import ByteSize as ByteSize
from ._size import parse_size as parse_size
from ._volume import VolumeDescription as VolumeDescription
from ._volume import VolumeSelector as VolumeSelector
from ._volume import compile_volume_selector as compile_volume_selector

if _typing.TYPE_CHECKING:
    from ._loader import MachineConfig as MachineConfig
    from ._loader import check_config as check_config
    from ._loader import load_config as load_config
    from ._loader import read_config_file as read_config_file

# The loader is imported on first use: with PyYAML it is ~12 % of `import volumed.controllers`, which the
# document models, their checks and the selectors do not need.
__getattr__ = _lazy_attributes(
    __name__,
    {
        "MachineConfig": "._loader",
        "check_config": "._loader",
        "load_config": "._loader",
        "read_config_file": "._loader",
    },
)

__all__ = [
    "DEFAULT_CIPHER",
    "DEFAULT_FILESYSTEM",
    "DEFAULT_KEY_SIZE_BITS",
    "DEFAULT_TPM_PCRS",
    "EPHEMERAL",
    "IMAGECACHE",
    "MAX_CONFIG_BYTES",
    "MIN_USER_VOLUME_SIZE",
    "PERF_OPTIONS",
    "SIZE_CONSTANTS",
    "STATE",
    "SUPPORTED_CIPHERS",
    "SUPPORTED_KEY_SIZES_BITS",
    "USER_VOLUME_PREFIX",
    "USER_VOLUME_TYPES",
    "ByteSize",
    "ConfigError",
    "ConfigInvalidError",
    "ConfigIssue",
    "DiskDescription",
    "DiskSelector",
    "DiskSelectorSpec",
    "EncryptionKey",
    "EncryptionSpec",
    "ExistingVolumeConfigDocument",
    "FilesystemSpec",
    "KMSKey",
    "KeyKind",
    "LegacyEncryptionSpec",
    "MachineConfig",
    "MetaEncryptionError",
    "NodeIDKey",
    "OtherDocument",
    "Pbkdf",
    "ProvisioningSpec",
    "RawVolumeConfigDocument",
    "SelectorError",
    "StaticKey",
    "SwapVolumeConfigDocument",
    "SystemDiskEncryption",
    "TPMKey",
    "TPMOptions",
    "UserVolumeConfigDocument",
    "VolumeConfigDocument",
    "VolumeDescription",
    "VolumeDocument",
    "VolumeSelector",
    "ZswapConfigDocument",
    "check_config",
    "compile_selector",
    "compile_volume_selector",
    "encryption_from_meta_json",
    "encryption_to_meta_json",
    "load_config",
    "parse_size",
    "read_config_file",
]
