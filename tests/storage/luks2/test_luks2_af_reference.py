"""AF merge and split against the specification written out plainly (LUKS1 ``af.c``), at LUKS2's 4000 stripes:
the library's diffusion reuses prefixed hash states and works on integers, which must not change a byte."""

from __future__ import annotations

import hashlib

import pytest

from volumed.storage.luks2.lowlevel import af_merge, af_split

STRIPES = 4000


def _diffuse(block: bytes, hash_name: str) -> bytes:
    size = hashlib.new(hash_name).digest_size
    out = b""
    for j, start in enumerate(range(0, len(block), size)):
        piece = block[start : start + size]
        out += hashlib.new(hash_name, j.to_bytes(4, "big") + piece).digest()[: len(piece)]
    return out


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _reference_merge(material: bytes, key_size: int, stripes: int, hash_name: str) -> bytes:
    d = bytes(key_size)
    for i in range(stripes - 1):
        d = _diffuse(_xor(d, material[i * key_size : (i + 1) * key_size]), hash_name)
    return _xor(d, material[(stripes - 1) * key_size : stripes * key_size])


def _material(key_size: int) -> bytes:
    """Deterministic stripes (no randomness in a test): a counter through sha512."""
    blocks = (hashlib.sha512(i.to_bytes(4, "big")).digest() for i in range(key_size * STRIPES // 64 + 1))
    return b"".join(blocks)[: key_size * STRIPES]


@pytest.mark.parametrize("hash_name", ["sha1", "sha256", "sha384", "sha512"])
@pytest.mark.parametrize("key_size", [16, 32, 40, 64])
def test_merge_matches_the_specification(hash_name: str, key_size: int) -> None:
    material = _material(key_size)
    assert af_merge(material, key_size, STRIPES, hash_name) == _reference_merge(
        material, key_size, STRIPES, hash_name
    )


@pytest.mark.parametrize("hash_name", ["sha1", "sha256", "sha512"])
def test_split_matches_the_specification(hash_name: str) -> None:
    key = bytes(range(64))
    noise = _material(64)[: 64 * (STRIPES - 1)]
    material = af_split(key, STRIPES, hash_name, random=lambda n: noise[:n])
    assert material[: len(noise)] == noise
    assert _reference_merge(material, 64, STRIPES, hash_name) == key
