"""The ``pbkdf2`` volume-key digest: how a candidate key is recognised, compared in constant time."""

from __future__ import annotations

import hmac
from functools import partial
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

if TYPE_CHECKING:
    from collections.abc import Callable

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha512": hashes.SHA512,
    "sha384": hashes.SHA384,
    "sha224": hashes.SHA224,
    "sha3-224": hashes.SHA3_224,
    "sha3-256": hashes.SHA3_256,
    "sha3-384": hashes.SHA3_384,
    "sha3-512": hashes.SHA3_512,
    "blake2b-512": partial(hashes.BLAKE2b, 64),
    "blake2s-256": partial(hashes.BLAKE2s, 32),
    "sm3": hashes.SM3,
}
_HASHLIB_NAMES = {
    "sha3-224": "sha3_224",
    "sha3-256": "sha3_256",
    "sha3-384": "sha3_384",
    "sha3-512": "sha3_512",
    "blake2b-512": "blake2b",  # 64 bytes, hashlib's default size
    "blake2s-256": "blake2s",  # 32 bytes
}


SUPPORTED_HASHES = ", ".join(_HASHES)
"""The pbkdf2 and digest hashes this library implements, for messages."""


def hashlib_name(name: str) -> str:
    """``hashlib``'s name for a LUKS (cryptsetup) hash name, for the AF diffusion."""
    return _HASHLIB_NAMES.get(name, name)


def hash_algorithm(name: str) -> hashes.HashAlgorithm:
    """The cryptography hash object for a LUKS hash name; ValueError for an unsupported one."""
    try:
        return _HASHES[name]()
    except KeyError:
        raise ValueError(f"unsupported hash {name!r}") from None


def pbkdf2(hash_name: str, secret: bytes, salt: bytes, iterations: int, length: int) -> bytes:
    """PBKDF2-HMAC, as used for both pbkdf2 key slots and digests."""
    kdf = PBKDF2HMAC(algorithm=hash_algorithm(hash_name), length=length, salt=salt, iterations=iterations)
    return kdf.derive(secret)


def compute_digest(volume_key: bytes, *, hash_name: str, salt: bytes, iterations: int, length: int) -> bytes:
    """The digest value stored for ``volume_key``."""
    return pbkdf2(hash_name, volume_key, salt, iterations, length)


def digest_matches(
    volume_key: bytes, *, hash_name: str, salt: bytes, iterations: int, expected: bytes
) -> bool:
    """Whether ``volume_key`` matches the stored digest (constant-time comparison)."""
    actual = pbkdf2(hash_name, volume_key, salt, iterations, len(expected))
    return hmac.compare_digest(actual, expected)
