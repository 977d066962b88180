"""KDF turns: as many runs at once as the CPUs and memory hold, first come first served.

The fixed count of turns before (``cpu_count // 2``) ran one-lane KDFs one at a time on two CPUs, a CPU idle
for the whole unlock phase (the dm boot bench's ten one-lane volumes):
`test_one_lane_volumes_unlock_side_by_side` failed before.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import pytest

from volumed.controllers.block import _kdf_turns
from volumed.controllers.block._encryption import Location, SlotKey, format_encrypted, open_encrypted
from volumed.controllers.block._kdf_turns import KdfTurns, available_memory_kib
from volumed.keys import StaticKeyProvider
from volumed.resources import EncryptionConfigSpec, PbkdfSpec
from volumed.storage.luks2 import KdfLoad

if TYPE_CHECKING:
    from pathlib import Path

ONE = KdfLoad(threads=1, memory_kib=0)
TWO = KdfLoad(threads=2, memory_kib=0)


async def _acquired(turns: KdfTurns, load: KdfLoad, order: list[str], name: str) -> None:
    await turns.acquire(load)
    order.append(name)


async def _settle() -> None:
    for _ in range(5):
        await anyio.lowlevel.checkpoint()


async def test_one_thread_runs_share_two_cpus_and_a_third_waits() -> None:
    turns = KdfTurns(cpus=2, memory_kib=None)
    order: list[str] = []
    async with anyio.create_task_group() as tg:
        for name in ("a", "b", "c"):
            tg.start_soon(_acquired, turns, ONE, order, name)
        await _settle()
        assert order == ["a", "b"]
        turns.release(ONE)
        await _settle()
        assert order == ["a", "b", "c"]
        assert turns.running == 2
        turns.release(ONE)
        turns.release(ONE)
    assert turns.running == 0


async def test_two_thread_runs_take_two_cpus_one_at_a_time() -> None:
    turns = KdfTurns(cpus=2, memory_kib=None)
    order: list[str] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_acquired, turns, TWO, order, "a")
        tg.start_soon(_acquired, turns, ONE, order, "b")
        await _settle()
        assert order == ["a"]
        turns.release(TWO)
        await _settle()
        assert order == ["a", "b"]
        turns.release(ONE)


async def test_memory_limits_how_many_run_at_once() -> None:
    turns = KdfTurns(cpus=8, memory_kib=1000)
    big = KdfLoad(threads=1, memory_kib=600)
    order: list[str] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_acquired, turns, big, order, "a")
        tg.start_soon(_acquired, turns, big, order, "b")
        await _settle()
        assert order == ["a"]  # 1200 KiB would not fit the 1000 KiB budget
        turns.release(big)
        await _settle()
        assert order == ["a", "b"]
        turns.release(big)


async def test_a_run_bigger_than_the_budget_runs_alone() -> None:
    turns = KdfTurns(cpus=2, memory_kib=1000)
    huge = KdfLoad(threads=64, memory_kib=5000)
    order: list[str] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_acquired, turns, huge, order, "huge")
        tg.start_soon(_acquired, turns, ONE, order, "small")
        await _settle()
        assert order == ["huge"]
        turns.release(huge)
        await _settle()
        assert order == ["huge", "small"]
        turns.release(ONE)


async def test_first_come_first_served_a_big_run_is_not_passed() -> None:
    turns = KdfTurns(cpus=2, memory_kib=None)
    order: list[str] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_acquired, turns, ONE, order, "a")
        await _settle()
        tg.start_soon(_acquired, turns, TWO, order, "big")
        await _settle()
        tg.start_soon(_acquired, turns, ONE, order, "late")  # would fit beside "a", but "big" came first
        await _settle()
        assert order == ["a"]
        turns.release(ONE)
        await _settle()
        assert order == ["a", "big"]
        turns.release(TWO)
        await _settle()
        assert order == ["a", "big", "late"]
        turns.release(ONE)


async def test_a_cancelled_waiter_leaves_the_queue_and_the_next_one_goes() -> None:
    turns = KdfTurns(cpus=2, memory_kib=None)
    order: list[str] = []
    await turns.acquire(ONE)
    big_scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:

        async def big() -> None:
            with big_scope:
                await _acquired(turns, TWO, order, "big")

        tg.start_soon(big)
        await _settle()
        tg.start_soon(_acquired, turns, ONE, order, "small")
        await _settle()
        assert order == []
        big_scope.cancel()
        await _settle()
        assert order == ["small"]  # fits beside the first run once "big" is gone
        turns.release(ONE)
    turns.release(ONE)
    assert turns.running == 0


async def test_a_waiter_cancelled_around_its_grant_leaves_the_turn_free() -> None:
    """Cancelled while its grant is on its way: either ``acquire`` gives the turn back as it raises, or it
    returns and the caller's release (``_run_kdf``'s ``finally``) does."""
    turns = KdfTurns(cpus=1, memory_kib=None)
    await turns.acquire(ONE)
    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:

        async def waiter() -> None:
            with scope:
                await turns.acquire(ONE)
                try:
                    await anyio.lowlevel.checkpoint()
                finally:
                    turns.release(ONE)

        tg.start_soon(waiter)
        await _settle()
        turns.release(ONE)  # grants the waiter ...
        scope.cancel()  # ... which is cancelled before it runs again
    assert turns.running == 0
    await turns.acquire(ONE)  # the turn is free
    turns.release(ONE)


def test_available_memory_is_read_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683504 kB\nMemFree:        1 kB\nMemAvailable:   24198700 kB\n")
    assert available_memory_kib(str(meminfo)) == 24198700
    meminfo.write_text("MemTotal:       24683504 kB\n")
    assert available_memory_kib(str(meminfo)) is None
    assert available_memory_kib(str(tmp_path / "missing")) is None


@pytest.mark.parametrize(("lanes", "overlap"), [(1, True), (2, False)])
async def test_one_lane_volumes_unlock_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lanes: int, overlap: bool
) -> None:
    """Two volumes opened at once on two CPUs: their one-lane KDFs run side by side, two-lane ones in turn."""
    monkeypatch.setattr(_kdf_turns, "usable_cpus", lambda: 2)
    monkeypatch.setattr("volumed.storage.luks2._kdf._cpus", lambda: 2)
    pbkdf = PbkdfSpec(type="argon2id", memory_kib=32768, iterations=8, parallel=lanes)
    encryption = EncryptionConfigSpec(pbkdf=pbkdf, key_size_bits=256)
    locations = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.img"
        with path.open("wb") as f:
            f.truncate(32 * 1024 * 1024)
        locations.append(Location(str(path)))
        key = SlotKey(0, "static", StaticKeyProvider(slot=0, passphrase=name.encode()))
        await format_encrypted(locations[-1], encryption, [key])

    import volumed.storage.luks2._keyslots as keyslots

    spans: list[tuple[float, float]] = []
    lock = threading.Lock()
    derive = keyslots.derive_key

    def timed_derive(*args: object, **kwargs: object) -> bytes:
        start = time.monotonic()
        try:
            return derive(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            with lock:
                spans.append((start, time.monotonic()))

    monkeypatch.setattr(keyslots, "derive_key", timed_derive)
    async with anyio.create_task_group() as tg:
        for location, name in zip(locations, ("a", "b"), strict=True):
            key = SlotKey(0, "static", StaticKeyProvider(slot=0, passphrase=name.encode()))
            tg.start_soon(open_encrypted, location, encryption, [key])
    assert len(spans) == 2
    (_, end_first), (start_second, _) = sorted(spans)
    assert (start_second < end_first) is overlap, spans
