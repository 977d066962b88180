"""Anti-forensic split and merge (LUKS1 ``af.c``): pure functions on bytes, no I/O."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


def _diffuse(block: bytes, hash_name: str) -> bytes:
    """Hash ``block`` piecewise: piece j becomes H(be32(j) || piece_j), truncated to the piece's length."""
    size = hashlib.new(hash_name).digest_size
    out = bytearray()
    for j, start in enumerate(range(0, len(block), size)):
        piece = block[start : start + size]
        out += hashlib.new(hash_name, j.to_bytes(4, "big") + piece).digest()[: len(piece)]
    return bytes(out)


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")


def af_merge(material: bytes, key_size: int, stripes: int, hash_name: str) -> bytes:
    """Recover a ``key_size``-byte key from ``stripes`` AF stripes (``material`` may be padded)."""
    if len(material) < key_size * stripes:
        raise ValueError(f"AF material is {len(material)} bytes, need {key_size * stripes}")
    hashlib.new(hash_name)  # fail early on an unknown hash
    d = bytes(key_size)
    for i in range(stripes - 1):
        d = _diffuse(_xor(d, material[i * key_size : (i + 1) * key_size]), hash_name)
    last = material[(stripes - 1) * key_size : stripes * key_size]
    return _xor(d, last)


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
    d = bytes(key_size)
    for i in range(stripes - 1):
        d = _diffuse(_xor(d, noise[i * key_size : (i + 1) * key_size]), hash_name)
    return noise + _xor(d, key)
