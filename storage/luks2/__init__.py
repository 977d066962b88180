"""LUKS2 in pure Python, byte-compatible with cryptsetup 2.6: format, unlock, key slots, tokens, recovery.

The everyday API is ``Luks2Volume``; raw header, AF, KDF and key slot operations live in
``volumed.storage.luks2.lowlevel`` (hazardous: no safety checks beyond the format's own).
"""

import typing as _typing

from volumed._lazy import lazy_attributes as _lazy_attributes

from ._errors import AmbiguousSignaturesError as AmbiguousSignaturesError
from ._errors import BusyError as BusyError
from ._errors import ConcurrentUpdateError as ConcurrentUpdateError
from ._errors import DeviceError as DeviceError
from ._errors import InvalidHeaderError as InvalidHeaderError
from ._errors import InvalidMetadataError as InvalidMetadataError
from ._errors import KeyslotNotActiveError as KeyslotNotActiveError
from ._errors import KeyslotUnusableError as KeyslotUnusableError
from ._errors import Luks2Error as Luks2Error
from ._errors import NoKeyError as NoKeyError
from ._errors import NoSpaceError as NoSpaceError
from ._errors import NotLuks2Error as NotLuks2Error
from ._errors import ReadOnlyError as ReadOnlyError
from ._errors import UnsupportedCipherError as UnsupportedCipherError

if _typing.TYPE_CHECKING:
    from ._argon2 import usable_cpus as usable_cpus
    from ._format import interrupted_format as interrupted_format
    from ._kdf import KdfLoad as KdfLoad
    from ._kdf import KdfSettings as KdfSettings
    from ._kdf import kdf_load as kdf_load
    from ._metadata import Token as Token
    from ._options import FormatOptions as FormatOptions
    from ._volume import Luks2Volume as Luks2Volume
    from ._volume_key import VolumeKey as VolumeKey
    from .payload import PayloadStream as PayloadStream
    from .xts import XtsCipher as XtsCipher

# The header, KDF and volume code is imported when first used: a FUSE server needs only the payload, and
# `import volumed.controllers` only the errors (the payload would load cryptography).
__getattr__ = _lazy_attributes(
    __name__,
    {
        "KdfLoad": "._kdf",
        "KdfSettings": "._kdf",
        "kdf_load": "._kdf",
        "usable_cpus": "._argon2",
        "interrupted_format": "._format",
        "Token": "._metadata",
        "FormatOptions": "._options",
        "Luks2Volume": "._volume",
        "VolumeKey": "._volume_key",
        "PayloadStream": ".payload",
        "XtsCipher": ".xts",
    },
)

__all__ = [
    "AmbiguousSignaturesError",
    "BusyError",
    "ConcurrentUpdateError",
    "DeviceError",
    "FormatOptions",
    "InvalidHeaderError",
    "InvalidMetadataError",
    "KdfLoad",
    "KdfSettings",
    "KeyslotNotActiveError",
    "KeyslotUnusableError",
    "Luks2Error",
    "Luks2Volume",
    "NoKeyError",
    "NoSpaceError",
    "NotLuks2Error",
    "PayloadStream",
    "ReadOnlyError",
    "Token",
    "UnsupportedCipherError",
    "VolumeKey",
    "XtsCipher",
    "interrupted_format",
    "kdf_load",
    "usable_cpus",
]
