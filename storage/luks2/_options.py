"""Format options: keyword arguments filling one frozen defaults object (luksFormat's flags)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ._area_cipher import check_cipher
from ._c_luks2 import HEADER_SIZES, LABEL_MAX, SUBSYSTEM_MAX
from ._errors import InvalidMetadataError
from ._kdf import KdfSettings
from ._validate import MAX_KEYSLOTS, MAX_KEYSLOTS_SIZE

MIB = 1024 * 1024
DEFAULT_DATA_OFFSET = 16 * MIB


def check_label(value: str, what: str, limit: int) -> None:
    if not value.isascii() or len(value) > limit or "\0" in value:
        raise InvalidMetadataError(f"{what} must be ASCII and at most {limit} characters")


@dataclass(frozen=True)
class FormatOptions:
    """What ``Luks2Volume.format`` builds; every default is cryptsetup 2.6's.

    Args:
        cipher: the segment and key slot cipher (``aes-xts-plain64``).
        key_size: volume key size in bytes (64 = 512 bits, or 32).
        sector_size: 512 or 4096; None picks 4096 when the data area is 4 KiB aligned, else 512.
        kdf: how the first key slot's KDF parameters are chosen.
        label: header label (at most 47 ASCII characters).
        subsystem: header subsystem (at most 47 ASCII characters).
        uuid: the volume UUID; None generates one.
        metadata_size: one header copy (binary header + JSON area): 16 KiB .. 4 MiB.
        keyslots_size: the key slot area; None: up to the 16 MiB data offset.
        data_offset: where the data segment starts; None: 16 MiB (0 with a detached header).
        keyslot: the number of the first key slot.
    """

    cipher: str = "aes-xts-plain64"
    key_size: int = 64
    sector_size: int | None = None
    kdf: KdfSettings = field(default_factory=KdfSettings)
    label: str = ""
    subsystem: str = ""
    uuid: str | None = None
    metadata_size: int = 16384
    keyslots_size: int | None = None
    data_offset: int | None = None
    keyslot: int = 0

    def __post_init__(self) -> None:
        check_cipher(self.cipher, self.key_size)
        if self.sector_size is not None and self.sector_size not in (512, 1024, 2048, 4096):
            raise InvalidMetadataError(f"sector size {self.sector_size} is not 512, 1024, 2048 or 4096")
        check_label(self.label, "label", LABEL_MAX)
        check_label(self.subsystem, "subsystem", SUBSYSTEM_MAX)
        if self.metadata_size not in HEADER_SIZES:
            raise InvalidMetadataError(
                f"metadata size {self.metadata_size} is not one of {', '.join(map(str, HEADER_SIZES))}"
            )
        if self.keyslots_size is not None and (
            self.keyslots_size % 4096 or not 0 < self.keyslots_size <= MAX_KEYSLOTS_SIZE
        ):
            raise InvalidMetadataError("keyslots size must be a positive multiple of 4096, at most 128 MiB")
        if self.data_offset is not None and self.data_offset % 512:
            raise InvalidMetadataError("data offset must be a multiple of 512 bytes")
        if self.uuid is not None:
            try:
                canonical = str(uuid.UUID(self.uuid))
            except ValueError:
                raise InvalidMetadataError(f"{self.uuid!r} is not a UUID") from None
            object.__setattr__(self, "uuid", canonical)
        if not 0 <= self.keyslot < MAX_KEYSLOTS:
            raise InvalidMetadataError(f"key slot {self.keyslot} is out of range 0..{MAX_KEYSLOTS - 1}")

    def layout(self, *, detached: bool) -> tuple[int, int]:
        """(keyslots_size, data_offset) as cryptsetup lays them out."""
        hdr2 = 2 * self.metadata_size
        if self.keyslots_size is not None:
            keyslots = self.keyslots_size
            default_offset = 0 if detached else -(-(hdr2 + keyslots) // MIB) * MIB
        else:
            keyslots = DEFAULT_DATA_OFFSET - hdr2
            default_offset = 0 if detached else DEFAULT_DATA_OFFSET
            if self.data_offset is not None and not detached and self.data_offset < DEFAULT_DATA_OFFSET:
                keyslots = (self.data_offset - hdr2) // 4096 * 4096
        offset = default_offset if self.data_offset is None else self.data_offset
        if keyslots <= 0:
            raise InvalidMetadataError("data offset leaves no room for the key slot area")
        if not detached and offset < hdr2 + keyslots:
            raise InvalidMetadataError(
                f"data offset {offset} overlaps the header and key slot areas ({hdr2 + keyslots} bytes)"
            )
        return keyslots, offset
