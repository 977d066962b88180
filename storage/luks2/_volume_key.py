"""The volume key as a value that never shows itself in a repr, log line or traceback."""

from __future__ import annotations

import hmac
from typing import final


@final
class VolumeKey:
    """A LUKS2 volume key and the key slot that produced it (None when it came from elsewhere).

    ``repr`` shows only the size and slot; compare with ``==`` (constant time) rather than on ``material``.
    """

    __slots__ = ("_material", "keyslot")

    def __init__(self, material: bytes, keyslot: int | None = None) -> None:
        self._material = bytes(material)
        self.keyslot = keyslot

    @property
    def material(self) -> bytes:
        """The raw key bytes: hand them to the payload cipher or dm-crypt, never to a log."""
        return self._material

    @property
    def bits(self) -> int:
        return len(self._material) * 8

    def hex(self) -> str:
        """Hex text as ``cryptsetup luksDump --dump-volume-key`` prints it (without spaces)."""
        return self._material.hex()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VolumeKey):
            return NotImplemented
        return hmac.compare_digest(self._material, other._material)

    def __hash__(self) -> int:
        return hash((len(self._material), self.keyslot))

    def __repr__(self) -> str:
        return f"VolumeKey(bits={self.bits}, keyslot={self.keyslot})"

    __str__ = __repr__
