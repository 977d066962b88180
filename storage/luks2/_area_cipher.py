"""Key slot area encryption: aes-xts-plain64 in 512-byte units, tweak counted from the start of the area.

Key slot areas are small (a few hundred KiB), so cryptography's XTS, one call per unit, is fast enough here;
the bulk payload cipher lives in ``xts.py``.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ._errors import InvalidMetadataError

UNIT = 512
SUPPORTED_CIPHERS = ("aes-xts-plain64",)


def check_cipher(spec: str, key_size: int) -> None:
    """Raise InvalidMetadataError unless ``spec`` with ``key_size`` bytes is a cipher this library handles."""
    if spec not in SUPPORTED_CIPHERS:
        raise InvalidMetadataError(f"unsupported cipher {spec!r} (supported: {', '.join(SUPPORTED_CIPHERS)})")
    if key_size not in (32, 64):
        raise InvalidMetadataError(f"aes-xts-plain64 needs a 256- or 512-bit key, got {key_size * 8} bits")


def _units(data: bytes, key: bytes, *, encrypt: bool) -> bytes:
    if len(data) % UNIT:
        raise ValueError(f"key slot area data must be a multiple of {UNIT} bytes")
    algorithm = algorithms.AES(key)
    out = bytearray(len(data))
    for i in range(len(data) // UNIT):
        cipher = Cipher(algorithm, modes.XTS(i.to_bytes(16, "little")))
        ctx = cipher.encryptor() if encrypt else cipher.decryptor()
        out[i * UNIT : (i + 1) * UNIT] = ctx.update(data[i * UNIT : (i + 1) * UNIT])
    return bytes(out)


def encrypt_area(data: bytes, key: bytes, spec: str = "aes-xts-plain64") -> bytes:
    """Encrypt key material (a multiple of 512 bytes) for a key slot area."""
    check_cipher(spec, len(key))
    return _units(data, key, encrypt=True)


def decrypt_area(data: bytes, key: bytes, spec: str = "aes-xts-plain64") -> bytes:
    """Decrypt key material read from a key slot area."""
    check_cipher(spec, len(key))
    return _units(data, key, encrypt=False)
