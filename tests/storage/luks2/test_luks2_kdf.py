"""KDFs: raw Argon2 equals argon2-cffi's, PBKDF2 equals hashlib's, and the benchmark picks sane parameters."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

import pytest
from argon2.low_level import Type, hash_secret_raw

from volumed.storage.luks2 import KdfSettings
from volumed.storage.luks2 import _kdf as kdf_module
from volumed.storage.luks2._kdf import benchmark_argon2, benchmark_pbkdf2, digest_iterations
from volumed.storage.luks2.lowlevel import Argon2Kdf, Pbkdf2Kdf, argon2_raw, derive_key, resolve_kdf

if TYPE_CHECKING:
    from functools import partial


@pytest.mark.parametrize(("kind", "ref"), [("argon2id", Type.ID), ("argon2i", Type.I)])
@pytest.mark.parametrize("lanes", [1, 2])
def test_argon2_raw_matches_argon2_cffi(kind: str, ref: Type, lanes: int) -> None:
    salt = os.urandom(32)
    ours = argon2_raw(kind, b"pw", salt, time_cost=3, memory_kib=4096, parallelism=lanes, length=64)
    theirs = hash_secret_raw(b"pw", salt, 3, 4096, lanes, 64, ref, version=19)
    assert ours == theirs


def test_argon2_rejects_bad_parameters_without_secrets() -> None:
    with pytest.raises(ValueError, match="argon2 failed") as info:
        argon2_raw(
            "argon2id", b"topsecret", bytes(32), time_cost=0, memory_kib=4096, parallelism=1, length=32
        )
    assert "topsecret" not in str(info.value)


def test_pbkdf2_matches_hashlib() -> None:
    kdf = Pbkdf2Kdf(hash="sha512", iterations=1234, salt=b"s" * 32)
    assert derive_key(kdf, b"pw", 64) == hashlib.pbkdf2_hmac("sha512", b"pw", b"s" * 32, 1234, 64)


def test_forced_parameters_are_used_as_given() -> None:
    kdf = resolve_kdf(
        KdfSettings(type="argon2i", iterations=5, memory_kib=1024, parallel=2), salt=b"x" * 32, key_size=64
    )
    assert kdf == Argon2Kdf(type="argon2i", time=5, memory=1024, cpus=2, salt=b"x" * 32)
    assert digest_iterations(KdfSettings(iterations=4)) == 1000


@pytest.fixture
def steady_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine of constant speed: a KDF run takes time proportional to its work (no timing flakes)."""

    def fake_timed(fn: partial[object]) -> float:
        if fn.keywords:  # argon2: time_cost passes over memory_kib KiB
            return float(fn.keywords["time_cost"] * fn.keywords["memory_kib"]) * 2e-7
        return float(fn.args[3]) * 1e-6  # pbkdf2: iterations

    monkeypatch.setattr(kdf_module, "_timed", fake_timed)


@pytest.mark.usefixtures("steady_clock")
def test_pbkdf2_benchmark_scales_with_the_target() -> None:
    assert benchmark_pbkdf2("sha256", 20, 32) == 20_000
    assert benchmark_pbkdf2("sha256", 200, 32) == 200_000
    assert benchmark_pbkdf2("sha256", 0, 32) == 1000  # never below cryptsetup's minimum


@pytest.mark.usefixtures("steady_clock")
def test_argon2_benchmark_shrinks_memory_before_time() -> None:
    time_cost, memory = benchmark_argon2("argon2id", 30, 1 << 20, 1, fixed_memory=False)
    assert time_cost == 4
    assert 32 * 1024 <= memory < 1 << 20
    time_cost, memory = benchmark_argon2("argon2id", 200, 8 * 1024, 1, fixed_memory=True)
    assert memory == 8 * 1024
    assert time_cost > 4


def test_default_settings_follow_cryptsetup_caps() -> None:
    kdf = resolve_kdf(KdfSettings(target_ms=30), salt=b"x" * 32, key_size=64)
    assert isinstance(kdf, Argon2Kdf)
    assert kdf.cpus == min(4, len(os.sched_getaffinity(0)))
    assert kdf.memory <= 1 << 20
    assert kdf.time >= 4
