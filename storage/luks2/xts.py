"""AES-XTS (``aes-xts-plain64``) over many data units at once: the LUKS2 payload cipher.

The payload is cut into data units of ``sector_size`` bytes; unit ``k`` is encrypted with the XTS tweak
``le64(iv_tweak + k * sector_size / 512) || 8 zero bytes`` (the IV counts 512-byte units even with 4096-byte
sectors, as dm-crypt and cryptsetup do).

Why two engines: ``cryptography`` has XTS, but it builds a new cipher context (key schedule for both keys) for
every tweak, about 4 µs per unit, which caps a 4096-byte-sector payload at ~12 % of ``openssl speed``. The
``libcrypto`` engine drives the same OpenSSL EVP interface through :mod:`ctypes` on the ``libcrypto`` that the
Python interpreter itself links: one context with the key schedule per cipher, and per data unit only a new
IV and one update (about 1 µs per 4096-byte unit). The ``cryptography`` engine is the fallback where that
library cannot be loaded, and the reference the tests compare the fast one against.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import weakref
from array import array
from typing import Final, Literal, final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["CIPHERS", "SECTOR_SIZES", "XtsCipher", "libcrypto_unavailable_reason"]

CIPHERS: Final = ("aes-xts-plain64",)
"""Cipher specs (cryptsetup's names) this module implements."""

SECTOR_SIZES: Final = (512, 1024, 2048, 4096)
"""Data unit sizes LUKS2 allows."""

IV_UNIT: Final = 512
_IV_LIMIT: Final = 1 << 64

Engine = Literal["auto", "libcrypto", "cryptography"]
Buffer = bytes | bytearray | memoryview


class _Libcrypto:
    """The few EVP functions of OpenSSL's libcrypto the fast engine needs, with their C signatures."""

    def __init__(self) -> None:
        path = "libcrypto.so.3"  # the interpreter's own where it links OpenSSL 3 (already loaded: no search)
        try:
            lib = ctypes.CDLL(path)
        except OSError:  # find_library runs `ldconfig -p` (a subprocess): only where the soname is not there
            path = ctypes.util.find_library("crypto") or path
            lib = ctypes.CDLL(path)
        if lib.OpenSSL_version_num() < 0x10100000:
            raise OSError(f"{path} is older than OpenSSL 1.1")
        vp = ctypes.c_void_p
        lib.EVP_CIPHER_CTX_new.restype = vp
        lib.EVP_CIPHER_CTX_new.argtypes = []
        lib.EVP_CIPHER_CTX_free.restype = None
        lib.EVP_CIPHER_CTX_free.argtypes = [vp]
        lib.EVP_aes_128_xts.restype = vp
        lib.EVP_aes_256_xts.restype = vp
        lib.EVP_CipherInit_ex.restype = ctypes.c_int
        lib.EVP_CipherInit_ex.argtypes = [vp, vp, vp, vp, vp, ctypes.c_int]
        lib.EVP_CipherUpdate.restype = ctypes.c_int
        lib.EVP_CipherUpdate.argtypes = [vp, vp, vp, vp, ctypes.c_int]
        self.path = path
        self.ctx_new = lib.EVP_CIPHER_CTX_new
        self.ctx_free = lib.EVP_CIPHER_CTX_free
        self.init = lib.EVP_CipherInit_ex
        self.update = lib.EVP_CipherUpdate
        self.aes_128_xts = lib.EVP_aes_128_xts
        self.aes_256_xts = lib.EVP_aes_256_xts


_libcrypto: _Libcrypto | None = None
_libcrypto_error: str | None = None
_libcrypto_lock = threading.Lock()


def _load_libcrypto() -> _Libcrypto | None:
    global _libcrypto, _libcrypto_error
    with _libcrypto_lock:
        if _libcrypto is None and _libcrypto_error is None:
            try:
                _libcrypto = _Libcrypto()
            except (OSError, AttributeError) as exc:
                _libcrypto_error = f"libcrypto could not be loaded through ctypes: {exc}"
        return _libcrypto


def libcrypto_unavailable_reason() -> str | None:
    """Why the fast ``libcrypto`` engine cannot be used here, or None when it can."""
    _load_libcrypto()
    return _libcrypto_error


def _check_layout(length: int, iv_tweak: int, sector_size: int) -> int:
    if sector_size not in SECTOR_SIZES:
        raise ValueError(f"sector size {sector_size} is not one of {', '.join(map(str, SECTOR_SIZES))}")
    if length % sector_size:
        raise ValueError(f"data length {length} is not a multiple of the sector size {sector_size}")
    if not 0 <= iv_tweak < _IV_LIMIT:
        raise ValueError(f"iv_tweak {iv_tweak} is outside 0..2**64-1")
    return length // sector_size


def _tweaks(count: int, iv_tweak: int, sector_size: int) -> list[int]:
    step = sector_size // IV_UNIT
    return [(iv_tweak + i * step) % _IV_LIMIT for i in range(count)]


class _LibcryptoEngine:
    """One OpenSSL EVP context per direction; per data unit a new IV and one update, in place."""

    name: Final = "libcrypto"

    def __init__(self, lib: _Libcrypto, key: bytes) -> None:
        self._lib = lib
        self._lock = threading.Lock()
        evp_cipher = lib.aes_256_xts() if len(key) == 64 else lib.aes_128_xts()
        key_buffer = ctypes.create_string_buffer(key, len(key))
        self._contexts: list[int] = []
        try:
            for direction in (1, 0):
                ctx = lib.ctx_new()
                if not ctx:
                    raise MemoryError("EVP_CIPHER_CTX_new failed")
                self._contexts.append(ctx)
                if lib.init(ctx, evp_cipher, None, key_buffer, None, direction) != 1:
                    raise ValueError("OpenSSL refused the XTS key (are its two halves identical?)")
        except BaseException:
            self._free(lib, self._contexts)
            raise
        finally:
            ctypes.memset(key_buffer, 0, len(key))
        self._finalizer = weakref.finalize(self, self._free, lib, self._contexts)

    @staticmethod
    def _free(lib: _Libcrypto, contexts: list[int]) -> None:
        while contexts:
            lib.ctx_free(contexts.pop())  # EVP_CIPHER_CTX_free cleanses the key schedule

    def run(self, buffer: bytearray | memoryview, iv_tweak: int, sector_size: int, *, encrypt: bool) -> None:
        count = len(buffer) // sector_size
        if count == 0:
            return
        step = sector_size // IV_UNIT
        last = iv_tweak + (count - 1) * step
        ivs = array("Q", bytes(16 * count))
        if last < _IV_LIMIT:
            ivs[0::2] = array("Q", range(iv_tweak, last + 1, step))
        else:
            ivs[0::2] = array("Q", _tweaks(count, iv_tweak, sector_size))
        iv_base = ivs.buffer_info()[0]
        anchor = ctypes.c_char.from_buffer(buffer)
        try:
            base = ctypes.addressof(anchor)
            out_len = ctypes.c_int()
            out_len_ptr = ctypes.addressof(out_len)
            init, update = self._lib.init, self._lib.update
            with self._lock:
                ctx = self._contexts[0 if encrypt else 1]
                failed = 0
                for address, iv_address in zip(
                    range(base, base + count * sector_size, sector_size),
                    range(iv_base, iv_base + 16 * count, 16),
                    strict=True,
                ):
                    failed |= init(ctx, None, None, None, iv_address, -1) ^ 1
                    failed |= update(ctx, address, out_len_ptr, address, sector_size) ^ 1
            if failed:
                raise RuntimeError("OpenSSL failed an AES-XTS update")
        finally:
            del anchor


class _CryptographyEngine:
    """``cryptography``'s XTS, one cipher context per data unit: portable, and the tests' reference."""

    name: Final = "cryptography"

    def __init__(self, key: bytes) -> None:
        self._algorithm = algorithms.AES(key)  # raises ValueError on identical key halves in XTS use

    def run(self, buffer: bytearray | memoryview, iv_tweak: int, sector_size: int, *, encrypt: bool) -> None:
        view = memoryview(buffer).cast("B")
        count = len(view) // sector_size
        for index, tweak in enumerate(_tweaks(count, iv_tweak, sector_size)):
            cipher = Cipher(self._algorithm, modes.XTS(tweak.to_bytes(16, "little")))
            context = cipher.encryptor() if encrypt else cipher.decryptor()
            start = index * sector_size
            unit = view[start : start + sector_size]
            unit[:] = context.update(unit)


@final
class XtsCipher:
    """An ``aes-xts-plain64`` cipher bound to a volume key, for whole data units at any IV.

    The key never appears in ``repr`` or in exception texts. Instances are thread-safe; the work happens with
    the GIL released only inside OpenSSL calls, so run large batches in a worker thread from async code.

    Args:
        key: the volume key, 32 bytes (AES-128-XTS, "256-bit key") or 64 bytes (AES-256-XTS, "512-bit").
        cipher: cryptsetup's cipher spec; only ``aes-xts-plain64``.
        engine: ``auto`` (libcrypto when it loads, else cryptography), or force one of the two.
    """

    __slots__ = ("__weakref__", "_engine", "_key_bits")

    def __init__(self, key: bytes, *, cipher: str = "aes-xts-plain64", engine: Engine = "auto") -> None:
        if cipher not in CIPHERS:
            raise ValueError(f"unsupported payload cipher {cipher!r} (supported: {', '.join(CIPHERS)})")
        if len(key) not in (32, 64):
            raise ValueError(f"aes-xts-plain64 needs a 256- or 512-bit key, got {len(key) * 8} bits")
        half = len(key) // 2
        if key[:half] == key[half:]:
            raise ValueError("aes-xts-plain64 key is unusable: its two halves are identical")
        self._key_bits = len(key) * 8
        self._engine: _LibcryptoEngine | _CryptographyEngine
        if engine == "cryptography":
            self._engine = _CryptographyEngine(bytes(key))
            return
        lib = _load_libcrypto()
        if lib is None:
            if engine == "libcrypto":
                raise RuntimeError(_libcrypto_error or "libcrypto is unavailable")
            self._engine = _CryptographyEngine(bytes(key))
        else:
            self._engine = _LibcryptoEngine(lib, bytes(key))

    def __repr__(self) -> str:
        return f"XtsCipher(aes-xts-plain64, {self._key_bits}-bit key, engine={self._engine.name})"

    @property
    def engine(self) -> str:
        """The engine in use: ``libcrypto`` or ``cryptography``."""
        return self._engine.name

    @property
    def key_bits(self) -> int:
        """Key size in bits as cryptsetup counts it (256 or 512)."""
        return self._key_bits

    def encrypt_inplace(self, buffer: bytearray | memoryview, *, iv_tweak: int, sector_size: int) -> None:
        """Encrypt whole data units in ``buffer`` in place; the first unit gets IV ``iv_tweak``."""
        self._run(buffer, iv_tweak, sector_size, encrypt=True)

    def decrypt_inplace(self, buffer: bytearray | memoryview, *, iv_tweak: int, sector_size: int) -> None:
        """Decrypt whole data units in ``buffer`` in place; the first unit has IV ``iv_tweak``."""
        self._run(buffer, iv_tweak, sector_size, encrypt=False)

    def encrypt(self, data: Buffer, *, iv_tweak: int, sector_size: int) -> bytes:
        """Return the encryption of whole data units; the first unit gets IV ``iv_tweak``."""
        buffer = bytearray(data)
        self._run(buffer, iv_tweak, sector_size, encrypt=True)
        return bytes(buffer)

    def decrypt(self, data: Buffer, *, iv_tweak: int, sector_size: int) -> bytes:
        """Return the decryption of whole data units; the first unit has IV ``iv_tweak``."""
        buffer = bytearray(data)
        self._run(buffer, iv_tweak, sector_size, encrypt=False)
        return bytes(buffer)

    def _run(self, buffer: bytearray | memoryview, iv_tweak: int, sector_size: int, *, encrypt: bool) -> None:
        if isinstance(buffer, memoryview):
            if buffer.readonly:
                raise ValueError("XTS in place needs a writable buffer")
            if not buffer.c_contiguous:
                raise ValueError("XTS in place needs a contiguous buffer")
            buffer = buffer.cast("B")
        _check_layout(len(buffer), iv_tweak, sector_size)
        self._engine.run(buffer, iv_tweak, sector_size, encrypt=encrypt)
