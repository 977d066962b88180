"""Key slot area encryption in 512-byte units, the IV (plain64) counted from the start of the area.

cryptsetup encrypts a key slot area with the segment's cipher: ``aes-xts-plain64`` (the payload's
:class:`.xts.XtsCipher`: one key schedule for the area, not cryptography's cipher context per unit, which
was 500 of them and up to 10 ms for the 256 KiB area of every unlock), or on volumes formatted for machines
without AES instructions ``xchacha12,aes-adiantum-plain64`` / ``xchacha20,aes-adiantum-plain64``
(:mod:`.adiantum`, its plain64 tweak the unit number as le64 in 32 bytes). The bulk payload cipher lives in
``xts.py``.
"""

from __future__ import annotations

from typing import Final

from ._errors import InvalidMetadataError
from .adiantum import Adiantum
from .xts import XtsCipher

UNIT = 512
XTS: Final = "aes-xts-plain64"
ADIANTUM_ROUNDS: Final = {"xchacha12,aes-adiantum-plain64": 12, "xchacha20,aes-adiantum-plain64": 20}
"""The adiantum cipher specs (Talos' names, cryptsetup's too) and their XChaCha rounds."""
SUPPORTED_CIPHERS = (XTS, *ADIANTUM_ROUNDS)
KEY_SIZES: Final = {XTS: (32, 64), **dict.fromkeys(ADIANTUM_ROUNDS, (32,))}
"""Key sizes in bytes each cipher takes."""


def check_cipher(spec: str, key_size: int) -> None:
    """Raise InvalidMetadataError unless ``spec`` with ``key_size`` bytes is a cipher this library handles."""
    if spec not in SUPPORTED_CIPHERS:
        raise InvalidMetadataError(f"unsupported cipher {spec!r} (supported: {', '.join(SUPPORTED_CIPHERS)})")
    if key_size not in KEY_SIZES[spec]:
        bits = "- or ".join(f"{size * 8}" for size in KEY_SIZES[spec])
        raise InvalidMetadataError(f"{spec} needs a {bits}-bit key, got {key_size * 8} bits")


def _units(data: bytes, key: bytes, spec: str, *, encrypt: bool) -> bytes:
    if len(data) % UNIT:
        raise ValueError(f"key slot area data must be a multiple of {UNIT} bytes")
    if spec in ADIANTUM_ROUNDS:
        out = bytearray(len(data))
        adiantum = Adiantum(key, rounds=ADIANTUM_ROUNDS[spec])
        crypt = adiantum.encrypt if encrypt else adiantum.decrypt
        for i in range(len(data) // UNIT):
            out[i * UNIT : (i + 1) * UNIT] = crypt(data[i * UNIT : (i + 1) * UNIT], i.to_bytes(32, "little"))
        return bytes(out)
    cipher = XtsCipher(key)
    if encrypt:
        return cipher.encrypt(data, iv_tweak=0, sector_size=UNIT)
    return cipher.decrypt(data, iv_tweak=0, sector_size=UNIT)


def encrypt_area(data: bytes, key: bytes, spec: str = XTS) -> bytes:
    """Encrypt key material (a multiple of 512 bytes) for a key slot area."""
    check_cipher(spec, len(key))
    return _units(data, key, spec, encrypt=True)


def decrypt_area(data: bytes, key: bytes, spec: str = XTS) -> bytes:
    """Decrypt key material read from a key slot area."""
    check_cipher(spec, len(key))
    return _units(data, key, spec, encrypt=False)
