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
from volumed.controllers.block._kdf_turns import (
    KdfTurn,
    KdfTurns,
    available_memory_kib,
    cgroup_memory_room_kib,
)
from volumed.keys import StaticKeyProvider
from volumed.resources import EncryptionConfigSpec, PbkdfSpec
from volumed.storage.luks2 import KdfLoad

if TYPE_CHECKING:
    from pathlib import Path

ONE = KdfLoad(threads=1, memory_kib=0)
TWO = KdfLoad(threads=2, memory_kib=0)


class Runs:
    """Runs taking turns, each released by name."""

    def __init__(self, turns: KdfTurns) -> None:
        self.turns = turns
        self.started: list[str] = []
        self.held: dict[str, KdfTurn] = {}

    async def run(self, name: str, load: KdfLoad) -> None:
        self.held[name] = await self.turns.acquire(load)
        self.started.append(name)

    def end(self, name: str) -> None:
        self.turns.release(self.held.pop(name))


async def _settle() -> None:
    for _ in range(5):
        await anyio.lowlevel.checkpoint()


async def test_one_thread_runs_share_two_cpus_and_a_third_waits() -> None:
    runs = Runs(KdfTurns(cpus=2, memory_kib=None))
    async with anyio.create_task_group() as tg:
        for name in ("a", "b", "c"):
            tg.start_soon(runs.run, name, ONE)
        await _settle()
        assert runs.started == ["a", "b"]
        runs.end("a")
        await _settle()
        assert runs.started == ["a", "b", "c"]
        assert runs.turns.running == 2
        runs.end("b")
        runs.end("c")
    assert runs.turns.running == 0


async def test_two_thread_runs_take_two_cpus_one_at_a_time() -> None:
    runs = Runs(KdfTurns(cpus=2, memory_kib=None))
    async with anyio.create_task_group() as tg:
        tg.start_soon(runs.run, "a", TWO)
        tg.start_soon(runs.run, "b", ONE)
        await _settle()
        assert runs.started == ["a"]
        runs.end("a")
        await _settle()
        assert runs.started == ["a", "b"]
        runs.end("b")


async def test_memory_limits_how_many_run_at_once() -> None:
    runs = Runs(KdfTurns(cpus=8, memory_kib=1000))
    big = KdfLoad(threads=1, memory_kib=600)
    async with anyio.create_task_group() as tg:
        tg.start_soon(runs.run, "a", big)
        tg.start_soon(runs.run, "b", big)
        await _settle()
        assert runs.started == ["a"]  # 1200 KiB would not fit the 1000 KiB budget
        runs.end("a")
        await _settle()
        assert runs.started == ["a", "b"]
        runs.end("b")


async def test_a_run_bigger_than_the_budget_runs_alone() -> None:
    runs = Runs(KdfTurns(cpus=2, memory_kib=1000))
    huge = KdfLoad(threads=64, memory_kib=5000)
    async with anyio.create_task_group() as tg:
        tg.start_soon(runs.run, "huge", huge)
        tg.start_soon(runs.run, "small", ONE)
        await _settle()
        assert runs.started == ["huge"]
        runs.end("huge")
        await _settle()
        assert runs.started == ["huge", "small"]
        runs.end("small")


async def test_a_small_run_is_not_held_behind_a_big_one_that_waits() -> None:
    """review60 F4: STATE's tiny one-lane KDF waited 2.4 s behind a queued two-lane run, a CPU idle."""
    runs = Runs(KdfTurns(cpus=2, memory_kib=None))
    async with anyio.create_task_group() as tg:
        tg.start_soon(runs.run, "a", ONE)
        await _settle()
        tg.start_soon(runs.run, "big", TWO)
        await _settle()
        tg.start_soon(runs.run, "small", ONE)  # fits beside "a": starts although "big" came first
        await _settle()
        assert runs.started == ["a", "small"]
        runs.end("a")
        runs.end("small")
        await _settle()
        assert runs.started == ["a", "small", "big"]
        runs.end("big")


async def test_a_run_past_its_lease_gives_back_its_cpus_not_its_memory() -> None:
    """review60 F1: a slot whose KDF never ends (argon2 time 2**32-1 passes validation) held its turn for
    good, and every volume queued behind it (STATE's too) never unlocked."""
    runs = Runs(KdfTurns(cpus=2, memory_kib=1000, lease=0.3))
    endless = KdfLoad(threads=2, memory_kib=600)
    async with anyio.create_task_group() as tg:
        tg.start_soon(runs.run, "endless", endless)
        await _settle()
        tg.start_soon(runs.run, "state", ONE)
        tg.start_soon(runs.run, "heavy", KdfLoad(threads=1, memory_kib=600))
        await _settle()
        assert runs.started == ["endless"]
        await anyio.sleep(0.5)  # the lease ends: "state" starts; "heavy" still does not fit the memory
        assert runs.started == ["endless", "state"]
        runs.end("state")  # review62 H1: the endless run alone no longer keeps "heavy" waiting for good
        await _settle()
        assert runs.started == ["endless", "state", "heavy"]
        runs.end("heavy")
        runs.end("endless")
    assert runs.turns.running == 0


async def test_a_run_that_waited_past_the_pass_limit_is_passed_no_more() -> None:
    """review62 M1: one-lane runs arriving every 1.5 s kept a two-lane run waiting for 90 s and more."""
    runs = Runs(KdfTurns(cpus=2, memory_kib=None, pass_limit=0.3))
    async with anyio.create_task_group() as tg:
        tg.start_soon(runs.run, "a", ONE)
        await _settle()
        tg.start_soon(runs.run, "big", TWO)
        await _settle()
        tg.start_soon(runs.run, "b", ONE)  # passes "big", which has not waited long
        await _settle()
        assert runs.started == ["a", "b"]
        await anyio.sleep(0.4)
        runs.end("a")
        tg.start_soon(runs.run, "c", ONE)  # would fit beside "b", but "big" has waited past the limit
        await _settle()
        assert runs.started == ["a", "b"]
        runs.end("b")
        await _settle()
        assert runs.started == ["a", "b", "big"]
        runs.end("big")
        await _settle()
        assert runs.started == ["a", "b", "big", "c"]
        runs.end("c")


async def test_the_memory_budget_is_read_again_when_no_run_holds_a_turn() -> None:
    budgets = iter([1000, 100])
    runs = Runs(KdfTurns(cpus=8, memory_kib=None, measure_memory=lambda: next(budgets)))
    medium = KdfLoad(threads=1, memory_kib=80)
    async with anyio.create_task_group() as tg:
        tg.start_soon(runs.run, "a", medium)
        tg.start_soon(runs.run, "b", medium)
        await _settle()
        assert runs.started == ["a", "b"]  # 160 of 1000
        runs.end("a")
        runs.end("b")
        tg.start_soon(runs.run, "c", medium)  # nothing runs: the budget is read again, 100 now
        tg.start_soon(runs.run, "d", medium)
        await _settle()
        assert runs.started == ["a", "b", "c"]
        runs.end("c")
        await _settle()
        runs.end("d")


async def test_a_cancelled_waiter_leaves_the_queue_and_the_next_one_goes() -> None:
    runs = Runs(KdfTurns(cpus=2, memory_kib=1000))
    first = await runs.turns.acquire(KdfLoad(threads=1, memory_kib=500))
    big_scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:

        async def big() -> None:
            with big_scope:
                await runs.run("big", KdfLoad(threads=1, memory_kib=1000))

        tg.start_soon(big)
        await _settle()
        assert runs.started == []
        big_scope.cancel()
        await _settle()
        tg.start_soon(runs.run, "small", KdfLoad(threads=1, memory_kib=400))
        await _settle()
        assert runs.started == ["small"]
        runs.end("small")
    runs.turns.release(first)
    assert runs.turns.running == 0


async def test_a_waiter_cancelled_around_its_grant_leaves_the_turn_free() -> None:
    """Cancelled while its grant is on its way: either ``acquire`` gives the turn back as it raises, or it
    returns and the caller's release (``_run_kdf``'s ``finally``) does."""
    turns = KdfTurns(cpus=1, memory_kib=None)
    first = await turns.acquire(ONE)
    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:

        async def waiter() -> None:
            with scope:
                turn = await turns.acquire(ONE)
                try:
                    await anyio.lowlevel.checkpoint()
                finally:
                    turns.release(turn)

        tg.start_soon(waiter)
        await _settle()
        turns.release(first)  # grants the waiter ...
        scope.cancel()  # ... which is cancelled before it runs again
    assert turns.running == 0
    turns.release(await turns.acquire(ONE))  # the turn is free


def test_available_memory_is_read_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683504 kB\nMemFree:        1 kB\nMemAvailable:   24198700 kB\n")
    assert available_memory_kib(str(meminfo)) == 24198700
    meminfo.write_text("MemTotal:       24683504 kB\n")
    assert available_memory_kib(str(meminfo)) is None
    assert available_memory_kib(str(tmp_path / "missing")) is None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v1_limits_of_the_cgroup_and_its_ancestors(tmp_path: Path) -> None:
    """review60 F2: under a 1 GiB cgroup limit two 600 MiB KDFs were let run at once (the budget was half of
    the host's MemAvailable) and the kernel killed volumed, at every start."""
    proc = tmp_path / "cgroup"
    proc.write_text("9:name=systemd:/\n4:memory:/system.slice/volumed.service\n0::/\n")
    memory = tmp_path / "fs" / "memory"
    _write(memory / "memory.limit_in_bytes", "9223372036854771712\n")  # the root: no limit
    _write(memory / "system.slice" / "memory.limit_in_bytes", str(4 << 30))
    _write(memory / "system.slice" / "memory.usage_in_bytes", str(3 << 30))
    unit = memory / "system.slice" / "volumed.service"
    _write(unit / "memory.limit_in_bytes", str(1 << 30))
    _write(unit / "memory.usage_in_bytes", str(100 << 20))
    assert cgroup_memory_room_kib(str(proc), str(tmp_path / "fs")) == (1 << 20) - 100 * 1024
    _write(unit / "memory.usage_in_bytes", str(10 << 20))
    _write(memory / "system.slice" / "memory.usage_in_bytes", str((4 << 30) - (50 << 20)))
    assert cgroup_memory_room_kib(str(proc), str(tmp_path / "fs")) == 50 * 1024  # the parent is nearly full
    # review62 M2: page cache the kernel drops first is not used memory (a 900 MiB file read in the cgroup
    # shrank the budget to 42 MiB)
    _write(memory / "system.slice" / "memory.stat", f"cache 1\ntotal_inactive_file {2 << 30}\n")
    assert cgroup_memory_room_kib(str(proc), str(tmp_path / "fs")) == (1 << 20) - 10 * 1024


def test_cgroup_v2_memory_max(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("0::/system.slice/volumed.service\n")
    tree = tmp_path / "fs"
    _write(tree / "cgroup.controllers", "cpu memory pids\n")
    _write(tree / "system.slice" / "memory.max", "max\n")
    _write(tree / "system.slice" / "memory.current", str(5 << 30))
    unit = tree / "system.slice" / "volumed.service"
    _write(unit / "memory.max", str(512 << 20))
    _write(unit / "memory.current", str(12 << 20))
    assert cgroup_memory_room_kib(str(proc), str(tree)) == 500 * 1024
    _write(unit / "memory.stat", f"anon 1\ninactive_file {10 << 20}\nactive_file 5\n")
    assert cgroup_memory_room_kib(str(proc), str(tree)) == 510 * 1024
    _write(unit / "memory.max", "max\n")
    assert cgroup_memory_room_kib(str(proc), str(tree)) is None
    assert cgroup_memory_room_kib(str(tmp_path / "missing"), str(tree)) is None


def test_the_budget_is_half_the_least_room(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_kdf_turns, "available_memory_kib", lambda: 8 << 20)
    monkeypatch.setattr(_kdf_turns, "cgroup_memory_room_kib", lambda: 1 << 20)
    assert _kdf_turns.memory_budget_kib() == 512 << 10
    monkeypatch.setattr(_kdf_turns, "cgroup_memory_room_kib", lambda: None)
    assert _kdf_turns.memory_budget_kib() == 4 << 20


@pytest.mark.parametrize(("lanes", "overlap"), [(1, True), (2, False)])
async def test_one_lane_volumes_unlock_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lanes: int, overlap: bool
) -> None:
    """Two volumes opened at once on two CPUs: their one-lane KDFs run side by side, two-lane ones in turn."""
    monkeypatch.setattr("volumed.storage.luks2.usable_cpus", lambda: 2)  # the turns' CPUs
    monkeypatch.setattr("volumed.storage.luks2._kdf.usable_cpus", lambda: 2)  # the loads' threads
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
