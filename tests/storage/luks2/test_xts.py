"""AES-XTS payload cipher: IEEE 1619 vectors, and both engines against ``cryptography``'s XTS on random data.

Vector provenance: IEEE Std 1619-2007, Annex B ("Test vectors"), XTS-AES vectors 2, 4, 5 and 10, as
published in the standard (the same values are in QEMU's tests/unit/test-crypto-cipher.c). Vectors 2 and 5
have a 32-byte data unit; XTS blocks without ciphertext stealing are independent, so they are checked as the
first 32 bytes of a 512-byte unit whose tweak (data unit sequence number) is the vector's.
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from volumed.storage.luks2 import xts
from volumed.storage.luks2.xts import SECTOR_SIZES, Engine, XtsCipher, libcrypto_unavailable_reason

ENGINES: list[Engine] = ["libcrypto", "cryptography"]

SEQUENTIAL_512 = bytes(range(256)) * 2

VECTOR_4_CTX = (
    "27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89cc78cf7f5e543445f8333d8fa7f560000"
    "05279fa5d8b5e4ad40e736ddb4d35412328063fd2aab53e5ea1e0a9f332500a5df9487d07a5c92cc512c8866c7e860ce"
    "93fdf166a24912b422976146ae20ce846bb7dc9ba94a767aaef20c0d61ad02655ea92dc4c4e41a8952c651d33174be51"
    "a10c421110e6d81588ede82103a252d8a750e8768defffed9122810aaeb99f9172af82b604dc4b8e51bcb08235a6f434"
    "1332e4ca60482a4ba1a03b3e65008fc5da76b70bf1690db4eae29c5f1badd03c5ccf2a55d705ddcd86d449511ceb7ec3"
    "0bf12b1fa35b913f9f747a8afd1b130e94bff94effd01a91735ca1726acd0b197c4e5b03393697e126826fb6bbde8ecc"
    "1e08298516e2c9ed03ff3c1b7860f6de76d4cecd94c8119855ef5297ca67e9f3e7ff72b1e99785ca0a7e7720c5b36dc6"
    "d72cac9574c8cbbc2f801e23e56fd344b07f22154beba0f08ce8891e643ed995c94d9a69c9f1b5f499027a78572aeebd"
    "74d20cc39881c213ee770b1010e4bea718846977ae119f7a023ab58cca0ad752afe656bb3c17256a9f6e9bf19fdd5a38"
    "fc82bbe872c5539edb609ef4f79c203ebb140f2e583cb2ad15b4aa5b655016a8449277dbd477ef2c8d6c017db738b18d"
    "eb4a427d1923ce3ff262735779a418f20a282df920147beabe421ee5319d0568"
)
VECTOR_10_CTX = (
    "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b5d31e276f8fe4a8d66b317f9ac683f44"
    "680a86ac35adfc3345befecb4bb188fd5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0"
    "c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca2a3e7a7d7df7b10355165c8b9a6d0a7d"
    "e8b062c4500dc4cd120c0f7418dae3d0b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f"
    "93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec583e9645e07b8d9670655ba5bbcfecc6"
    "dc3966380ad8fecb17b6ba02469a020a84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1"
    "505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae9be69a2ffeceb1bec9de244fbe15992b"
    "11b77c040f12bd8f6a975a44a0f90c29a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac"
    "6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f645e8b7e9bfdef33943054ff84011493"
    "c27b3429eaedb4ed5376441a77ed43851ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa"
    "773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151"
)

# (name, key1 || key2, data unit sequence number, plaintext, expected ciphertext prefix)
IEEE_1619_VECTORS = [
    (
        "vector-2 (AES-128, 32-byte unit)",
        "11" * 16 + "22" * 16,
        0x3333333333,
        b"\x44" * 512,
        "c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0",
    ),
    (
        "vector-5 (AES-128, 32-byte unit)",
        "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0" + "bfbebdbcbbbab9b8b7b6b5b4b3b2b1b0",
        0x123456789A,
        b"\x44" * 512,
        "b01f86f8edc1863706fa8a4253e34f28af319de38334870f4dd1f94cbe9832f1",
    ),
    (
        "vector-4 (AES-128, 512-byte unit)",
        "27182818284590452353602874713526" + "31415926535897932384626433832795",
        0,
        SEQUENTIAL_512,
        VECTOR_4_CTX,
    ),
    (
        "vector-10 (AES-256, 512-byte unit)",
        "2718281828459045235360287471352662497757247093699959574966967627"
        + "3141592653589793238462643383279502884197169399375105820974944592",
        0xFF,
        SEQUENTIAL_512,
        VECTOR_10_CTX,
    ),
]


def reference(key: bytes, data: bytes, iv_tweak: int, sector_size: int, *, encrypt: bool) -> bytes:
    """Per data unit through cryptography's XTS: the obvious implementation the engines must equal."""
    out = bytearray()
    for index in range(len(data) // sector_size):
        tweak = ((iv_tweak + index * sector_size // 512) % 2**64).to_bytes(16, "little")
        cipher = Cipher(algorithms.AES(key), modes.XTS(tweak))
        context = cipher.encryptor() if encrypt else cipher.decryptor()
        out += context.update(data[index * sector_size : (index + 1) * sector_size])
    return bytes(out)


def test_libcrypto_engine_is_available_here() -> None:
    assert libcrypto_unavailable_reason() is None
    assert XtsCipher(os.urandom(64)).engine == "libcrypto"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("name", "key", "unit", "plaintext", "expected"), IEEE_1619_VECTORS)
def test_ieee_1619_vectors(
    engine: Engine, name: str, key: str, unit: int, plaintext: bytes, expected: str
) -> None:
    cipher = XtsCipher(bytes.fromhex(key), engine=engine)
    ciphertext = cipher.encrypt(plaintext, iv_tweak=unit, sector_size=512)
    assert ciphertext.hex().startswith(expected), name
    assert cipher.decrypt(ciphertext, iv_tweak=unit, sector_size=512) == plaintext


@pytest.mark.parametrize("engine", ENGINES)
@given(
    key=st.binary(min_size=32, max_size=32) | st.binary(min_size=64, max_size=64),
    sector_size=st.sampled_from(SECTOR_SIZES),
    units=st.integers(min_value=0, max_value=5),
    iv_tweak=st.integers(min_value=0, max_value=2**64 - 1) | st.integers(min_value=0, max_value=1000),
    seed=st.binary(min_size=16, max_size=16),
)
def test_engines_equal_cryptography_xts(
    engine: Engine, key: bytes, sector_size: int, units: int, iv_tweak: int, seed: bytes
) -> None:
    half = len(key) // 2
    if key[:half] == key[half:]:
        return
    data = (seed * (sector_size // 16 * units + 1))[: sector_size * units]
    cipher = XtsCipher(key, engine=engine)
    ciphertext = cipher.encrypt(data, iv_tweak=iv_tweak, sector_size=sector_size)
    assert ciphertext == reference(key, data, iv_tweak, sector_size, encrypt=True)
    assert cipher.decrypt(ciphertext, iv_tweak=iv_tweak, sector_size=sector_size) == data


@pytest.mark.parametrize("engine", ENGINES)
def test_in_place_on_a_memoryview_slice(engine: Engine) -> None:
    key = os.urandom(64)
    data = os.urandom(4096 * 3)
    buffer = bytearray(b"x" * 100 + data + b"y" * 100)
    cipher = XtsCipher(key, engine=engine)
    cipher.encrypt_inplace(memoryview(buffer)[100:-100], iv_tweak=8, sector_size=4096)
    assert buffer[100:-100] == reference(key, data, 8, 4096, encrypt=True)
    assert buffer[:100] == b"x" * 100
    assert buffer[-100:] == b"y" * 100
    cipher.decrypt_inplace(memoryview(buffer)[100:-100], iv_tweak=8, sector_size=4096)
    assert buffer[100:-100] == data
    buffer.append(0)  # the buffer export was released


def test_iv_counts_512_byte_units_with_4096_byte_sectors() -> None:
    key = os.urandom(64)
    data = os.urandom(4096 * 2)
    cipher = XtsCipher(key)
    second = cipher.encrypt(data[4096:], iv_tweak=10 + 8, sector_size=4096)
    assert cipher.encrypt(data, iv_tweak=10, sector_size=4096)[4096:] == second


def test_iv_wraps_at_2_to_the_64() -> None:
    key = os.urandom(32)
    data = os.urandom(512 * 3)
    cipher = XtsCipher(key)
    ciphertext = cipher.encrypt(data, iv_tweak=2**64 - 2, sector_size=512)
    assert ciphertext[1024:] == cipher.encrypt(data[1024:], iv_tweak=0, sector_size=512)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": b"k" * 31}, "256- or 512-bit key, got 248 bits"),
        ({"key": b"a" * 32 + b"a" * 32}, "two halves are identical"),
        ({"key": os.urandom(64), "cipher": "aes-cbc-essiv:sha256"}, "unsupported payload cipher"),
    ],
)
def test_bad_keys_and_ciphers_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        XtsCipher(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("length", "iv_tweak", "sector_size", "message"),
    [
        (1000, 0, 512, "not a multiple of the sector size 512"),
        (4096, 0, 8192, "sector size 8192 is not one of"),
        (512, -1, 512, "outside 0..2"),
        (512, 2**64, 512, "outside 0..2"),
    ],
)
def test_bad_layouts_are_refused(length: int, iv_tweak: int, sector_size: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        XtsCipher(os.urandom(64)).encrypt(bytes(length), iv_tweak=iv_tweak, sector_size=sector_size)


def test_read_only_buffer_is_refused() -> None:
    with pytest.raises(ValueError, match="writable"):
        XtsCipher(os.urandom(64)).encrypt_inplace(memoryview(bytes(512)), iv_tweak=0, sector_size=512)


def test_key_never_in_repr_or_errors() -> None:
    key = os.urandom(64)
    cipher = XtsCipher(key)
    assert key.hex() not in repr(cipher)
    assert repr(cipher) == "XtsCipher(aes-xts-plain64, 512-bit key, engine=libcrypto)"
    with pytest.raises(ValueError, match="multiple of the sector size") as info:
        cipher.encrypt(bytes(100), iv_tweak=0, sector_size=512)
    assert key.hex() not in str(info.value)


def test_auto_falls_back_to_cryptography_without_libcrypto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xts, "_load_libcrypto", lambda: None)
    monkeypatch.setattr(xts, "_libcrypto_error", "libcrypto could not be loaded through ctypes: test")
    key = os.urandom(64)
    cipher = XtsCipher(key)
    assert cipher.engine == "cryptography"
    data = os.urandom(1024)
    assert cipher.encrypt(data, iv_tweak=1, sector_size=512) == reference(key, data, 1, 512, encrypt=True)
    with pytest.raises(RuntimeError, match="libcrypto could not be loaded through ctypes: test"):
        XtsCipher(key, engine="libcrypto")
