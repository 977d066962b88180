"""Anti-forensic split and merge (LUKS1 ``af.c``): pure functions on bytes, no I/O."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

from ._digest import hashlib_name

if TYPE_CHECKING:
    from collections.abc import Callable


def _diffuser(length: int, hash_name: str) -> Callable[[int], int]:
    """The diffusion of a ``length``-byte block, on the block as a little-endian integer: piece j becomes
    H(be32(j) || piece_j), truncated to the piece's length.

    Each piece's hash starts as a copy of one fed be32(j) already: ``hashlib.new`` by name for every piece
    (8000 for a 64-byte key with sha256) was most of an unlock's time after its KDF, and an unlock runs
    while it holds the turn the next volume's KDF waits for.
    """
    start = hashlib.new(hashlib_name(hash_name))
    size = start.digest_size
    pieces = []
    for j, offset in enumerate(range(0, length, size)):
        prefixed = start.copy()
        prefixed.update(j.to_bytes(4, "big"))
        pieces.append((offset, min(size, length - offset), prefixed))

    def diffuse(value: int) -> int:
        block = value.to_bytes(length, "little")
        out = bytearray()
        for offset, piece, prefixed in pieces:
            h = prefixed.copy()
            h.update(block[offset : offset + piece])
            out += h.digest()[:piece]
        return int.from_bytes(out, "little")

    return diffuse


def af_merge(material: bytes, key_size: int, stripes: int, hash_name: str) -> bytes:
    """Recover a ``key_size``-byte key from ``stripes`` AF stripes (``material`` may be padded)."""
    if len(material) < key_size * stripes:
        raise ValueError(f"AF material is {len(material)} bytes, need {key_size * stripes}")
    diffuse = _diffuser(key_size, hash_name)  # fails early on an unknown hash
    d = 0
    for i in range(stripes - 1):
        d = diffuse(d ^ int.from_bytes(material[i * key_size : (i + 1) * key_size], "little"))
    last = int.from_bytes(material[(stripes - 1) * key_size : stripes * key_size], "little")
    return (d ^ last).to_bytes(key_size, "little")


def af_split(
    key: bytes, stripes: int, hash_name: str, *, random: Callable[[int], bytes] = os.urandom
) -> bytes:
    """Split ``key`` into ``stripes`` stripes: stripes-1 random ones, the last one key XOR the diffused chain.

    Args:
        key: the secret to split.
        stripes: number of stripes (LUKS2 always uses 4000).
        hash_name: the diffusion hash (``af.hash`` in the key slot).
        random: randomness source; a seam for deterministic tests.
    """
    key_size = len(key)
    noise = random(key_size * (stripes - 1))
    diffuse = _diffuser(key_size, hash_name)
    d = 0
    for i in range(stripes - 1):
        d = diffuse(d ^ int.from_bytes(noise[i * key_size : (i + 1) * key_size], "little"))
    return noise + (d ^ int.from_bytes(key, "little")).to_bytes(key_size, "little")
