"""Raw Argon2 (v1.3) through libargon2's ``argon2_ctx``, with its working memory on transparent huge pages.

argon2-cffi's ``hash_secret_raw`` lets libargon2 ``malloc`` the matrix: hundreds of MiB of 4 KiB pages, one
page fault and one TLB entry each, touched in random order. Handing libargon2 an anonymous mapping advised
with ``MADV_HUGEPAGE`` gives the same result bytes about a quarter faster. The mapping is created per call and
unmapped afterwards (libargon2 wipes it first), so no key-derived memory outlives the call.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading
from typing import Any

from _argon2_cffi_bindings import ffi, lib  # type: ignore[import-untyped]

_TYPES = {"argon2i": lib.Argon2_i, "argon2id": lib.Argon2_id, "argon2d": lib.Argon2_d}
_VERSION = 0x13

_lock = threading.Lock()
_live: dict[int, tuple[mmap.mmap, Any]] = {}


# error=: if the callback itself raises, libargon2 must see a failed allocation, never ARGON2_OK
@ffi.callback("int(uint8_t **, size_t)", error=int(lib.ARGON2_MEMORY_ALLOCATION_ERROR))  # type: ignore[untyped-decorator]
def _allocate(memory: Any, size: int) -> int:
    try:
        region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except OSError:
        return int(lib.ARGON2_MEMORY_ALLOCATION_ERROR)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        with contextlib.suppress(OSError):  # no THP on this kernel: plain pages still work
            region.madvise(mmap.MADV_HUGEPAGE)
    pointer = ffi.from_buffer("uint8_t[]", region)
    address = int(ffi.cast("uintptr_t", pointer))
    with _lock:
        _live[address] = (region, pointer)
    memory[0] = pointer
    return int(lib.ARGON2_OK)


@ffi.callback("void(uint8_t *, size_t)")  # type: ignore[untyped-decorator]
def _free(memory: Any, size: int) -> None:
    with _lock:
        entry = _live.pop(int(ffi.cast("uintptr_t", memory)), None)
    if entry is not None:
        region, pointer = entry
        ffi.release(pointer)
        region.close()


_UINT32_MAX = 2**32 - 1


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity): argon2 runs its lanes on at most this many threads."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _check_limits(kind: str, salt: bytes, time_cost: int, memory_kib: int, lanes: int, length: int) -> None:
    """libargon2's own limits (argon2.h), as a ValueError naming the parameter (never the secret)."""
    if kind not in _TYPES:
        raise ValueError(f"argon2 failed: unknown type {kind!r}")
    for name, value, low, high in (
        ("time cost", time_cost, 1, _UINT32_MAX),
        ("lanes", lanes, 1, 2**24 - 1),
        ("memory", memory_kib, 8 * max(lanes, 1), _UINT32_MAX),
        ("output length", length, 4, _UINT32_MAX),
        ("salt length", len(salt), 8, _UINT32_MAX),
    ):
        if not low <= value <= high:
            raise ValueError(f"argon2 failed: {name} {value} out of range {low}..{high}")


def argon2_raw(
    kind: str, secret: bytes, salt: bytes, *, time_cost: int, memory_kib: int, parallelism: int, length: int
) -> bytes:
    """Argon2 raw hash (no secret key, no associated data), as LUKS2 key slots use it.

    Lanes (``parallelism``) set the result; the threads that compute them are capped by the CPUs this
    process may use, so a header asking for thousands of lanes costs memory, never thousands of threads.

    Raises:
        ValueError: parameters outside libargon2's limits (checked here first: cffi would raise
            OverflowError past 32 bits), or libargon2 could not allocate the memory.
    """
    _check_limits(kind, salt, time_cost, memory_kib, parallelism, length)
    out = ffi.new("uint8_t[]", length)
    pwd = ffi.new("uint8_t[]", secret)
    csalt = ffi.new("uint8_t[]", salt)
    ctx = ffi.new(
        "argon2_context *",
        {
            "out": out,
            "outlen": length,
            "pwd": pwd,
            "pwdlen": len(secret),
            "salt": csalt,
            "saltlen": len(salt),
            "secret": ffi.NULL,
            "secretlen": 0,
            "ad": ffi.NULL,
            "adlen": 0,
            "t_cost": time_cost,
            "m_cost": memory_kib,
            "lanes": parallelism,
            "threads": min(parallelism, usable_cpus()),
            "version": _VERSION,
            "allocate_cbk": _allocate,
            "free_cbk": _free,
            "flags": lib.ARGON2_FLAG_CLEAR_PASSWORD,
        },
    )
    rc = lib.argon2_ctx(ctx, _TYPES[kind])
    if rc != lib.ARGON2_OK:
        message = ffi.string(lib.argon2_error_message(rc)).decode("ascii", "replace")
        raise ValueError(f"argon2 failed: {message}")
    result = bytes(ffi.buffer(out, length))
    ffi.memmove(out, bytes(length), length)
    return result
