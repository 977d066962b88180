"""Low-level LUKS2 operations. HAZARDOUS MATERIALS.

.. warning::
    This module is full of land mines, dragons, and dinosaurs with laser guns: raw header copies, AF
    split/merge, KDF runs and key slot area encryption with no checks beyond the format's own. Use it to
    build or inspect formats, not to manage volumes; use ``volumed.storage.luks2.Luks2Volume`` for that.
"""

from ._af import af_merge as af_merge
from ._af import af_split as af_split
from ._area_cipher import decrypt_area as decrypt_area
from ._area_cipher import encrypt_area as encrypt_area
from ._argon2 import argon2_raw as argon2_raw
from ._c_luks2 import HEADER_SIZES as HEADER_SIZES
from ._c_luks2 import BinaryHeader as BinaryHeader
from ._c_luks2 import compute_checksum as compute_checksum
from ._device import Region as Region
from ._digest import compute_digest as compute_digest
from ._header_io import HeaderState as HeaderState
from ._header_io import commit as commit
from ._header_io import load as load
from ._header_io import read_copy as read_copy
from ._header_io import repair as repair
from ._header_io import write_copies as write_copies
from ._kdf import derive_key as derive_key
from ._kdf import resolve_kdf as resolve_kdf
from ._keyslots import allocate_area as allocate_area
from ._keyslots import build_keyslot as build_keyslot
from ._keyslots import open_keyslot as open_keyslot
from ._keyslots import unlock_order as unlock_order
from ._metadata import Argon2Kdf as Argon2Kdf
from ._metadata import Config as Config
from ._metadata import Digest as Digest
from ._metadata import Keyslot as Keyslot
from ._metadata import Metadata as Metadata
from ._metadata import OpaqueKeyslot as OpaqueKeyslot
from ._metadata import Pbkdf2Kdf as Pbkdf2Kdf
from ._metadata import Segment as Segment
from ._validate import validate as validate

__all__ = [
    "HEADER_SIZES",
    "Argon2Kdf",
    "BinaryHeader",
    "Config",
    "Digest",
    "HeaderState",
    "Keyslot",
    "Metadata",
    "OpaqueKeyslot",
    "Pbkdf2Kdf",
    "Region",
    "Segment",
    "af_merge",
    "af_split",
    "allocate_area",
    "argon2_raw",
    "build_keyslot",
    "commit",
    "compute_checksum",
    "compute_digest",
    "decrypt_area",
    "derive_key",
    "encrypt_area",
    "load",
    "open_keyslot",
    "read_copy",
    "repair",
    "resolve_kdf",
    "unlock_order",
    "validate",
    "write_copies",
]
