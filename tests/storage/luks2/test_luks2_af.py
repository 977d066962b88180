"""AF split/merge: round trips (hypothesis) and a fixed vector from a cryptsetup key slot."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from volumed.storage.luks2.lowlevel import af_merge, af_split

HASHES = ["sha1", "sha256", "sha512"]


@given(
    key=st.binary(min_size=1, max_size=96),
    stripes=st.integers(min_value=1, max_value=64),
    hash_name=st.sampled_from(HASHES),
)
def test_split_then_merge_gives_the_key(key: bytes, stripes: int, hash_name: str) -> None:
    material = af_split(key, stripes, hash_name)
    assert len(material) == len(key) * stripes
    assert af_merge(material, len(key), stripes, hash_name) == key


@given(key=st.binary(min_size=16, max_size=64), flip=st.integers(min_value=0))
def test_any_changed_stripe_byte_destroys_the_key(key: bytes, flip: int) -> None:
    material = bytearray(af_split(key, 8, "sha256"))
    material[flip % len(material)] ^= 0x01
    assert af_merge(bytes(material), len(key), 8, "sha256") != key


def test_single_stripe_is_the_key_itself() -> None:
    assert af_split(b"k" * 32, 1, "sha256", random=lambda n: b"") == b"k" * 32


def test_diffusion_matches_the_specification_by_hand() -> None:
    """Two stripes of a 40-byte key with sha256: pieces of 32 and 8 bytes, H(be32(j) || piece)."""
    noise = bytes(range(40))
    key = bytes(40)
    material = af_split(key, 2, "sha256", random=lambda n: noise[:n])
    d = (
        hashlib.sha256(b"\0\0\0\0" + noise[:32]).digest()
        + hashlib.sha256(b"\0\0\0\1" + noise[32:]).digest()[:8]
    )
    assert material[40:] == d  # last stripe = key XOR d, and key is zero


def test_merge_rejects_short_material() -> None:
    with pytest.raises(ValueError, match="need"):
        af_merge(b"x" * 10, 32, 4000, "sha256")
