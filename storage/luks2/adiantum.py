"""Adiantum (XChaCha12/20 + AES-256 + NH + Poly1305): the cipher of ``xchacha*,aes-adiantum-plain64``.

cryptsetup encrypts a key slot area with the segment cipher, so a LUKS2 volume formatted with adiantum
(Talos' choice for machines without AES instructions) has adiantum key slot areas too: unlocking it needs
this cipher in userspace. Written from the Adiantum paper (Crowley and Biggers, 2018); the byte layout
(subkey derivation, the 32-byte tweak, the tail block) is the Linux ``adiantum(xchacha12,aes)`` one, checked
against the kernel's test vectors (tests/storage/luks2/test_adiantum.py) and against dm-crypt in the
kernel tier.

Pure Python: fast enough for key slot areas (about 250 units of 512 bytes for a 256-bit key), far too slow
for a data path.
"""

from __future__ import annotations

import struct
from typing import Final, final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_SIZE: Final = 32
TWEAK_SIZE: Final = 32
BLOCK_SIZE: Final = 16

_MASK32: Final = 0xFFFFFFFF
_MASK64: Final = (1 << 64) - 1
_MASK128: Final = (1 << 128) - 1
_P1305: Final = (1 << 130) - 5
_CLAMP: Final = 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
_SIGMA: Final = struct.unpack("<4I", b"expand 32-byte k")

_NH_MESSAGE: Final = 1024  # bytes hashed per NH call
_NH_KEY_WORDS: Final = _NH_MESSAGE // 4 + 12  # four passes, the key shifted by 4 words each: 268 words
_DERIVED: Final = 32 + 16 + 16 + 4 * _NH_KEY_WORDS  # K_E, K_T, K_M, K_N


def _rounds(state: list[int], rounds: int) -> list[int]:
    """ChaCha's double rounds on a copy of ``state`` (no feed-forward)."""
    x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15 = state
    m = _MASK32
    for _ in range(rounds // 2):
        # column round
        x0 = (x0 + x4) & m
        x12 ^= x0
        x12 = ((x12 << 16) | (x12 >> 16)) & m
        x8 = (x8 + x12) & m
        x4 ^= x8
        x4 = ((x4 << 12) | (x4 >> 20)) & m
        x0 = (x0 + x4) & m
        x12 ^= x0
        x12 = ((x12 << 8) | (x12 >> 24)) & m
        x8 = (x8 + x12) & m
        x4 ^= x8
        x4 = ((x4 << 7) | (x4 >> 25)) & m
        x1 = (x1 + x5) & m
        x13 ^= x1
        x13 = ((x13 << 16) | (x13 >> 16)) & m
        x9 = (x9 + x13) & m
        x5 ^= x9
        x5 = ((x5 << 12) | (x5 >> 20)) & m
        x1 = (x1 + x5) & m
        x13 ^= x1
        x13 = ((x13 << 8) | (x13 >> 24)) & m
        x9 = (x9 + x13) & m
        x5 ^= x9
        x5 = ((x5 << 7) | (x5 >> 25)) & m
        x2 = (x2 + x6) & m
        x14 ^= x2
        x14 = ((x14 << 16) | (x14 >> 16)) & m
        x10 = (x10 + x14) & m
        x6 ^= x10
        x6 = ((x6 << 12) | (x6 >> 20)) & m
        x2 = (x2 + x6) & m
        x14 ^= x2
        x14 = ((x14 << 8) | (x14 >> 24)) & m
        x10 = (x10 + x14) & m
        x6 ^= x10
        x6 = ((x6 << 7) | (x6 >> 25)) & m
        x3 = (x3 + x7) & m
        x15 ^= x3
        x15 = ((x15 << 16) | (x15 >> 16)) & m
        x11 = (x11 + x15) & m
        x7 ^= x11
        x7 = ((x7 << 12) | (x7 >> 20)) & m
        x3 = (x3 + x7) & m
        x15 ^= x3
        x15 = ((x15 << 8) | (x15 >> 24)) & m
        x11 = (x11 + x15) & m
        x7 ^= x11
        x7 = ((x7 << 7) | (x7 >> 25)) & m
        # diagonal round
        x0 = (x0 + x5) & m
        x15 ^= x0
        x15 = ((x15 << 16) | (x15 >> 16)) & m
        x10 = (x10 + x15) & m
        x5 ^= x10
        x5 = ((x5 << 12) | (x5 >> 20)) & m
        x0 = (x0 + x5) & m
        x15 ^= x0
        x15 = ((x15 << 8) | (x15 >> 24)) & m
        x10 = (x10 + x15) & m
        x5 ^= x10
        x5 = ((x5 << 7) | (x5 >> 25)) & m
        x1 = (x1 + x6) & m
        x12 ^= x1
        x12 = ((x12 << 16) | (x12 >> 16)) & m
        x11 = (x11 + x12) & m
        x6 ^= x11
        x6 = ((x6 << 12) | (x6 >> 20)) & m
        x1 = (x1 + x6) & m
        x12 ^= x1
        x12 = ((x12 << 8) | (x12 >> 24)) & m
        x11 = (x11 + x12) & m
        x6 ^= x11
        x6 = ((x6 << 7) | (x6 >> 25)) & m
        x2 = (x2 + x7) & m
        x13 ^= x2
        x13 = ((x13 << 16) | (x13 >> 16)) & m
        x8 = (x8 + x13) & m
        x7 ^= x8
        x7 = ((x7 << 12) | (x7 >> 20)) & m
        x2 = (x2 + x7) & m
        x13 ^= x2
        x13 = ((x13 << 8) | (x13 >> 24)) & m
        x8 = (x8 + x13) & m
        x7 ^= x8
        x7 = ((x7 << 7) | (x7 >> 25)) & m
        x3 = (x3 + x4) & m
        x14 ^= x3
        x14 = ((x14 << 16) | (x14 >> 16)) & m
        x9 = (x9 + x14) & m
        x4 ^= x9
        x4 = ((x4 << 12) | (x4 >> 20)) & m
        x3 = (x3 + x4) & m
        x14 ^= x3
        x14 = ((x14 << 8) | (x14 >> 24)) & m
        x9 = (x9 + x14) & m
        x4 ^= x9
        x4 = ((x4 << 7) | (x4 >> 25)) & m
    return [x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15]


def hchacha(key: bytes, nonce16: bytes, rounds: int) -> bytes:
    """HChaCha: the XChaCha subkey from ``key`` and 16 nonce bytes (words 0-3 and 12-15, no feed-forward)."""
    state = [*_SIGMA, *struct.unpack("<8I", key), *struct.unpack("<4I", nonce16)]
    out = _rounds(state, rounds)
    return struct.pack("<8I", *out[0:4], *out[12:16])


def xchacha_stream(key: bytes, nonce: bytes, length: int, rounds: int) -> bytes:
    """``length`` bytes of XChaCha keystream for a 24-byte ``nonce``, block counter from 0 (DJB's layout)."""
    subkey_bytes = hchacha(key, nonce[:16], rounds)
    if rounds == 20:  # OpenSSL's ChaCha20: its 16-byte IV is state words 12-15 (counter 0, then the tail)
        encryptor = Cipher(algorithms.ChaCha20(subkey_bytes, bytes(8) + nonce[16:24]), mode=None).encryptor()
        return encryptor.update(bytes(length))
    subkey = struct.unpack("<8I", subkey_bytes)
    tail = struct.unpack("<2I", nonce[16:24])
    blocks = []
    for counter in range(-(-length // 64)):
        state = [*_SIGMA, *subkey, counter & _MASK32, counter >> 32, *tail]
        mixed = _rounds(state, rounds)
        blocks.append(struct.pack("<16I", *[(a + b) & _MASK32 for a, b in zip(mixed, state, strict=True)]))
    return b"".join(blocks)[:length]


def _poly1305_blocks(r: int, h: int, data: bytes) -> int:
    """Poly1305's accumulation over whole 16-byte blocks (each with the 2^128 pad bit), no final key."""
    for i in range(0, len(data), 16):
        h = ((h + int.from_bytes(data[i : i + 16], "little") + (1 << 128)) * r) % _P1305
    return h


def _nh(key: tuple[int, ...], message: bytes) -> bytes:
    """NH over at most 1024 bytes (a multiple of 16): four passes, the key shifted by 16 bytes per pass."""
    words = struct.unpack(f"<{len(message) // 4}I", message)
    m = _MASK32
    s0 = s1 = s2 = s3 = 0
    for j in range(0, len(words), 4):
        m0, m1, m2, m3 = words[j : j + 4]
        k = key[j : j + 16]
        s0 += ((m0 + k[0]) & m) * ((m2 + k[2]) & m) + ((m1 + k[1]) & m) * ((m3 + k[3]) & m)
        s1 += ((m0 + k[4]) & m) * ((m2 + k[6]) & m) + ((m1 + k[5]) & m) * ((m3 + k[7]) & m)
        s2 += ((m0 + k[8]) & m) * ((m2 + k[10]) & m) + ((m1 + k[9]) & m) * ((m3 + k[11]) & m)
        s3 += ((m0 + k[12]) & m) * ((m2 + k[14]) & m) + ((m1 + k[13]) & m) * ((m3 + k[15]) & m)
    return struct.pack("<4Q", s0 & _MASK64, s1 & _MASK64, s2 & _MASK64, s3 & _MASK64)


@final
class Adiantum:
    """One Adiantum key: encrypt or decrypt a message of 16 bytes or more under a 32-byte tweak.

    The repr never shows key material.
    """

    __slots__ = ("_aes", "_nh_key", "_rm", "_rounds", "_rt", "_stream_key")

    def __init__(self, key: bytes, *, rounds: int = 12) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError(f"adiantum needs a 256-bit key, got {len(key) * 8} bits")
        if rounds not in (12, 20):
            raise ValueError("adiantum uses XChaCha12 or XChaCha20")
        self._rounds = rounds
        self._stream_key = bytes(key)
        derived = xchacha_stream(key, b"\x01" + bytes(23), _DERIVED, rounds)
        self._aes = Cipher(algorithms.AES(derived[:32]), modes.ECB())
        self._rt = int.from_bytes(derived[32:48], "little") & _CLAMP
        self._rm = int.from_bytes(derived[48:64], "little") & _CLAMP
        self._nh_key = struct.unpack(f"<{_NH_KEY_WORDS}I", derived[64:])

    def __repr__(self) -> str:
        return f"Adiantum(xchacha{self._rounds})"

    def _hash(self, tweak: bytes, bulk: bytes) -> int:
        """H(T, L): Poly1305_KT(bit length || T) + Poly1305_KM(NH chunks of L), both without the final key."""
        header = (len(bulk) * 8).to_bytes(16, "little") + tweak
        ht = _poly1305_blocks(self._rt, 0, header) & _MASK128
        padded = bulk + bytes(-len(bulk) % 16)
        hashes = b"".join(
            _nh(self._nh_key, padded[i : i + _NH_MESSAGE]) for i in range(0, len(padded), _NH_MESSAGE)
        )
        hm = _poly1305_blocks(self._rm, 0, hashes) & _MASK128
        return (ht + hm) & _MASK128

    def _stream_xor(self, middle: bytes, bulk: bytes) -> bytes:
        stream = xchacha_stream(self._stream_key, middle + b"\x01" + bytes(7), len(bulk), self._rounds)
        return (int.from_bytes(bulk, "little") ^ int.from_bytes(stream, "little")).to_bytes(
            len(bulk), "little"
        )

    def _check(self, data: bytes, tweak: bytes) -> None:
        if len(tweak) != TWEAK_SIZE:
            raise ValueError(f"adiantum's tweak is {TWEAK_SIZE} bytes, got {len(tweak)}")
        if len(data) < BLOCK_SIZE:
            raise ValueError(f"adiantum encrypts at least {BLOCK_SIZE} bytes, got {len(data)}")

    def encrypt(self, plaintext: bytes, tweak: bytes) -> bytes:
        """Encrypt ``plaintext`` (16 bytes or more) under ``tweak``; AES takes its last 16 bytes."""
        self._check(plaintext, tweak)
        bulk, right = plaintext[:-BLOCK_SIZE], int.from_bytes(plaintext[-BLOCK_SIZE:], "little")
        p_m = ((right + self._hash(tweak, bulk)) & _MASK128).to_bytes(BLOCK_SIZE, "little")
        encryptor = self._aes.encryptor()
        c_m = encryptor.update(p_m) + encryptor.finalize()
        c_bulk = self._stream_xor(c_m, bulk)
        c_right = (int.from_bytes(c_m, "little") - self._hash(tweak, c_bulk)) & _MASK128
        return c_bulk + c_right.to_bytes(BLOCK_SIZE, "little")

    def decrypt(self, ciphertext: bytes, tweak: bytes) -> bytes:
        """Invert :meth:`encrypt`."""
        self._check(ciphertext, tweak)
        c_bulk, c_right = ciphertext[:-BLOCK_SIZE], int.from_bytes(ciphertext[-BLOCK_SIZE:], "little")
        c_m = ((c_right + self._hash(tweak, c_bulk)) & _MASK128).to_bytes(BLOCK_SIZE, "little")
        bulk = self._stream_xor(c_m, c_bulk)
        decryptor = self._aes.decryptor()
        p_m = decryptor.update(c_m) + decryptor.finalize()
        right = (int.from_bytes(p_m, "little") - self._hash(tweak, bulk)) & _MASK128
        return bulk + right.to_bytes(BLOCK_SIZE, "little")
