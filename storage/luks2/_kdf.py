"""Key derivation for key slots (argon2i/argon2id/pbkdf2) and cryptsetup-like parameter selection."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from ._argon2 import argon2_raw, usable_cpus
from ._digest import SUPPORTED_HASHES, hash_algorithm, pbkdf2
from ._errors import InvalidMetadataError
from ._metadata import ARGON2_TYPES, PBKDF2, Argon2Kdf, Kdf, Pbkdf2Kdf
from ._validate import ARGON2_CPUS, ARGON2_MEMORY_KIB, ARGON2_TIME, KEY_SIZE, PBKDF2_ITERATIONS, UINT32_MAX

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

DEFAULT_TARGET_MS = 2000
DIGEST_TARGET_MS = 125
MAX_MEMORY_KIB = 1024 * 1024
MIN_MEMORY_KIB = 32 * 1024
ARGON2_MIN_TIME = 4
PBKDF2_MIN_ITERATIONS = 1000
MAX_PARALLEL = 4


_EXITS = (KeyboardInterrupt, SystemExit, GeneratorExit)


@contextlib.contextmanager
def kdf_failures(what: str) -> Iterator[None]:
    """Turn whatever a KDF raises into InvalidMetadataError naming ``what`` (never a secret).

    Defence in depth behind header validation: `cryptography` panics (pyo3's PanicException, a
    BaseException) on values it cannot convert, libargon2 and cffi raise ValueError, OverflowError or
    MemoryError. None of that may leave the library as anything but a LUKS2 error.
    """
    try:
        yield
    except (ValueError, OverflowError, MemoryError) as exc:
        raise InvalidMetadataError(
            f"{what} failed: {exc if isinstance(exc, ValueError) else type(exc).__name__}"
        ) from None
    except BaseException as exc:
        if isinstance(exc, _EXITS):
            raise
        raise InvalidMetadataError(f"{what} failed: {type(exc).__name__}") from None


def kdf_problem(kdf: Kdf, length: int) -> str | None:
    """Why this library will not run ``kdf`` for a ``length``-byte key here, or None.

    Out-of-range values (see ``_validate``), an unsupported pbkdf2 hash, and argon2 memory above this
    machine's physical memory: cryptsetup only warns there, but touching more memory than the machine has
    ends in the OOM killer, which would take the whole daemon (and every volume it holds open) with it.
    """
    low, high = KEY_SIZE
    if not low <= length <= high:
        return f"key length {length} out of range {low}..{high}"
    if isinstance(kdf, Pbkdf2Kdf):
        try:
            hash_algorithm(kdf.hash)
        except ValueError:
            return f"pbkdf2 hash {kdf.hash!r} is not supported by volumed (supported: {SUPPORTED_HASHES})"
        low, high = PBKDF2_ITERATIONS
        if not low <= kdf.iterations <= high:
            return f"pbkdf2 iterations {kdf.iterations} out of range {low}..{high}"
        return None
    for name, value, (low, high) in (
        ("time", kdf.time, ARGON2_TIME),
        ("memory", kdf.memory, ARGON2_MEMORY_KIB),
        ("cpus", kdf.cpus, ARGON2_CPUS),
    ):
        if not low <= value <= high:
            return f"argon2 {name} {value} out of range {low}..{high}"
    ram = _ram_kib()
    if kdf.memory > ram:
        return f"argon2 needs {kdf.memory} KiB of memory, more than this machine has ({ram} KiB)"
    return None


def derive_key(kdf: Kdf, passphrase: bytes, length: int) -> bytes:
    """Run the key slot KDF: the key that decrypts the slot's area.

    Raises:
        InvalidMetadataError: parameters this library will not run (`kdf_problem`), or the KDF failed.
    """
    problem = kdf_problem(kdf, length)
    if problem is not None:
        raise InvalidMetadataError(f"key derivation refused: {problem}")
    with kdf_failures(f"{kdf.type} key derivation"):
        if isinstance(kdf, Pbkdf2Kdf):
            return pbkdf2(kdf.hash, passphrase, kdf.salt, kdf.iterations, length)
        return argon2_raw(
            kdf.type,
            passphrase,
            kdf.salt,
            time_cost=kdf.time,
            memory_kib=kdf.memory,
            parallelism=kdf.cpus,
            length=length,
        )


@dataclass(frozen=True)
class KdfSettings:
    """How to pick KDF parameters for a new key slot (cryptsetup's ``--pbkdf*`` options).

    Unset values are benchmarked like cryptsetup does: iterations toward ``target_ms``, argon2 memory up to
    1 GiB and half of RAM, parallelism min(4, CPUs). Setting ``iterations`` skips the benchmark (and makes the
    digest use 1000 iterations, as ``--pbkdf-force-iterations`` does).

    Args:
        type: ``argon2id`` (default), ``argon2i`` or ``pbkdf2``.
        hash: the pbkdf2 hash, also used as the AF hash (``sha256`` default).
        iterations: forced iterations (pbkdf2) or time cost (argon2).
        memory_kib: argon2 memory in KiB.
        parallel: argon2 lanes/threads.
        target_ms: the unlock time the benchmark aims for.
    """

    type: str = "argon2id"
    hash: str = "sha256"
    iterations: int | None = None
    memory_kib: int | None = None
    parallel: int | None = None
    target_ms: int = DEFAULT_TARGET_MS

    def __post_init__(self) -> None:
        if self.type not in (PBKDF2, *ARGON2_TYPES):
            raise InvalidMetadataError(f"unknown pbkdf {self.type!r} (argon2id, argon2i or pbkdf2)")
        try:
            hash_algorithm(self.hash)
        except ValueError:
            raise InvalidMetadataError(f"unsupported hash {self.hash!r}") from None
        for name in ("iterations", "memory_kib", "parallel"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= UINT32_MAX:
                raise InvalidMetadataError(f"pbkdf {name} {value} out of range 1..{UINT32_MAX}")
        if self.iterations is not None and self.type == PBKDF2 and self.iterations < PBKDF2_MIN_ITERATIONS:
            raise InvalidMetadataError(f"pbkdf2 needs at least {PBKDF2_MIN_ITERATIONS} iterations")
        if self.type in ARGON2_TYPES:
            if self.memory_kib is not None and not 32 <= self.memory_kib <= 4 * 1024 * 1024:
                raise InvalidMetadataError(f"argon2 memory {self.memory_kib} KiB is out of range")
            if self.parallel is not None and self.parallel > MAX_PARALLEL:
                raise InvalidMetadataError(f"argon2 parallel {self.parallel} exceeds {MAX_PARALLEL}")

    @property
    def benchmarks(self) -> bool:
        return self.iterations is None

    def load(self) -> KdfLoad:
        """What a slot made with these settings costs while its KDF runs (a benchmark holds every CPU:
        run beside other KDFs it would measure them, and pick weaker parameters)."""
        if self.benchmarks:
            return KdfLoad(threads=usable_cpus(), memory_kib=self.memory_kib or _default_memory_kib())
        if self.type == PBKDF2:
            return KdfLoad(threads=1, memory_kib=0)
        parallel = self.parallel or _default_parallel()
        memory = max(self.memory_kib or _default_memory_kib(), 8 * parallel)
        return KdfLoad(threads=min(parallel, usable_cpus()), memory_kib=memory)


@dataclass(frozen=True)
class KdfLoad:
    """The CPUs (threads) and memory one KDF run holds until it ends: what decides how many run at once."""

    threads: int
    memory_kib: int


def kdf_load(kdf: Kdf) -> KdfLoad:
    """What running a key slot's KDF costs here: argon2 computes its lanes on at most as many threads as
    there are usable CPUs (`argon2_raw`), and holds its memory for the whole run; pbkdf2 is one thread."""
    if isinstance(kdf, Pbkdf2Kdf):
        return KdfLoad(threads=1, memory_kib=0)
    return KdfLoad(threads=max(1, min(kdf.cpus, usable_cpus())), memory_kib=kdf.memory)


def _ram_kib() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 1024
    except (ValueError, OSError):
        return 2 * MAX_MEMORY_KIB


def _default_parallel() -> int:
    return min(MAX_PARALLEL, usable_cpus())


def _default_memory_kib() -> int:
    return min(MAX_MEMORY_KIB, _ram_kib() // 2)


def resolve_kdf(settings: KdfSettings, *, salt: bytes, key_size: int) -> Kdf:
    """Concrete KDF parameters for a new slot: forced values as given, the rest benchmarked."""
    if settings.type == PBKDF2:
        iterations = settings.iterations
        if iterations is None:
            iterations = benchmark_pbkdf2(settings.hash, settings.target_ms, key_size)
        return Pbkdf2Kdf(hash=settings.hash, iterations=iterations, salt=salt)
    parallel = settings.parallel or _default_parallel()
    memory = settings.memory_kib or _default_memory_kib()
    memory = max(memory, 8 * parallel)
    time_cost = settings.iterations
    if time_cost is None:
        time_cost, memory = benchmark_argon2(
            settings.type, settings.target_ms, memory, parallel, fixed_memory=settings.memory_kib is not None
        )
    return Argon2Kdf(type=settings.type, time=time_cost, memory=memory, cpus=parallel, salt=salt)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def benchmark_pbkdf2(hash_name: str, target_ms: int, key_size: int) -> int:
    """Iterations of PBKDF2-``hash_name`` that take about ``target_ms`` here (at least 1000)."""
    salt = bytes(32)
    iterations = 1000
    while True:
        elapsed = _timed(partial(pbkdf2, hash_name, b"benchmark", salt, iterations, key_size))
        if elapsed >= 0.05 or iterations >= 1 << 24:
            break
        iterations *= 4
    estimate = int(iterations * (target_ms / 1000) / max(elapsed, 1e-6))
    return min(UINT32_MAX, max(PBKDF2_MIN_ITERATIONS, estimate))


def _argon2_seconds(kind: str, time_cost: int, memory_kib: int, parallel: int) -> float:
    return _timed(
        partial(
            argon2_raw,
            kind,
            b"benchmark",
            bytes(32),
            time_cost=time_cost,
            memory_kib=memory_kib,
            parallelism=parallel,
            length=32,
        )
    )


def _fit(target: float, per_kib_pass: float, max_memory_kib: int, fixed_memory: bool) -> tuple[int, int]:
    full_passes = int(target / (per_kib_pass * max_memory_kib))
    if full_passes >= ARGON2_MIN_TIME or fixed_memory:
        return max(ARGON2_MIN_TIME, full_passes), max_memory_kib
    memory = int(target / (per_kib_pass * ARGON2_MIN_TIME))
    return ARGON2_MIN_TIME, max(min(MIN_MEMORY_KIB, max_memory_kib), min(memory, max_memory_kib))


def benchmark_argon2(
    kind: str, target_ms: int, max_memory_kib: int, parallel: int, *, fixed_memory: bool
) -> tuple[int, int]:
    """(time cost, memory KiB) reaching about ``target_ms``: memory first (up to the cap), then time.

    Like cryptsetup, the time cost stays at least 4; when even 4 passes over the memory cap take too long,
    the memory shrinks instead (never below 32 MiB unless a smaller cap was given). A small sample gives a
    first estimate; one pass at the estimated memory then corrects it, because large areas cost more per KiB
    (cache and TLB misses, first-touch page faults) than a small sample shows.
    """
    target = target_ms / 1000
    sample_kib = min(max_memory_kib, 64 * 1024)
    # the faster of two runs: the first one also pays for never-touched memory pages
    sample = min(_argon2_seconds(kind, ARGON2_MIN_TIME, sample_kib, parallel) for _ in range(2))
    time_cost, memory = _fit(
        target, max(sample, 1e-6) / (ARGON2_MIN_TIME * sample_kib), max_memory_kib, fixed_memory
    )
    if memory > sample_kib:
        one_pass = _argon2_seconds(kind, 1, memory, parallel)
        time_cost, memory = _fit(target, max(one_pass, 1e-6) / memory, memory, fixed_memory)
    return time_cost, memory


def digest_iterations(settings: KdfSettings) -> int:
    """Digest iterations: 1000 with forced KDF parameters, else PBKDF2-SHA256 benchmarked to ~125 ms."""
    if not settings.benchmarks:
        return PBKDF2_MIN_ITERATIONS
    return benchmark_pbkdf2("sha256", DIGEST_TARGET_MS, 32)
