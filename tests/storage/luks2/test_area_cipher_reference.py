"""The key slot area's aes-xts-plain64 against cryptography's XTS one 512-byte unit at a time (the tweak the
unit number from the start of the area), for both key sizes: the area goes through the payload's XtsCipher,
one key schedule for all its units."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from volumed.storage.luks2._area_cipher import UNIT, decrypt_area, encrypt_area


def _reference(data: bytes, key: bytes, *, encrypt: bool) -> bytes:
    out = b""
    for i in range(len(data) // UNIT):
        cipher = Cipher(algorithms.AES(key), modes.XTS(i.to_bytes(16, "little")))
        context = cipher.encryptor() if encrypt else cipher.decryptor()
        out += context.update(data[i * UNIT : (i + 1) * UNIT])
    return out


@pytest.mark.parametrize("key_size", [32, 64])
def test_area_units_match_one_cipher_context_per_unit(key_size: int) -> None:
    key = hashlib.sha512(b"area key").digest()[:key_size]
    data = b"".join(hashlib.sha512(i.to_bytes(4, "big")).digest() for i in range(500 * UNIT // 64))
    encrypted = encrypt_area(data, key)
    assert encrypted == _reference(data, key, encrypt=True)
    assert decrypt_area(encrypted, key) == data
    assert decrypt_area(data, key) == _reference(data, key, encrypt=False)
