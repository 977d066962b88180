"""Turns for key-slot KDF runs: as many at once as this machine's CPUs and memory hold.

A KDF run holds ``min(lanes, CPUs)`` threads and its argon2 memory until it ends. A fixed number of turns
(half the CPUs) suited two-lane KDFs on two CPUs, but ran one-lane KDFs one at a time there with a CPU left
idle for the whole unlock phase (the dm boot bench: ten one-lane volumes, two vCPUs), let two four-lane
KDFs share four CPUs with eight threads, and ignored memory, so two 1 GiB KDFs could start together on a
node with 2 GiB.

Here a run starts when its threads fit the free CPUs and its memory fits the memory budget: half of the
least of the kernel's MemAvailable and the room left under this process' memory cgroup limits (a unit's
``MemoryMax=``, a container's limit), read whenever a run asks for a turn while none holds one. A run too
big for the budget still runs, alone. Waiting runs are looked at
in arrival order and each one that fits starts: a small run (STATE's) is not held behind a big one that must
wait anyway; a run that has waited ``PASS_LIMIT`` seconds is passed no more.

A run that holds its turn longer than ``LEASE`` seconds gives back its CPUs and no longer keeps a run that
must go alone from going: a slot whose KDF never ends (a header with an absurd time cost) would otherwise
hold every other volume back for good. Its memory still counts for runs that share. The thread goes on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import anyio.lowlevel

if TYPE_CHECKING:
    from collections.abc import Callable

    from volumed.storage.luks2 import KdfLoad

MEMINFO: Final = "/proc/meminfo"
PROC_CGROUP: Final = "/proc/self/cgroup"
CGROUP_ROOT: Final = "/sys/fs/cgroup"
LEASE: Final = 60.0
"""Seconds a KDF run counts against the CPUs: Talos' limit for a whole encryption step. Not shorter: a lease
of 10 s expired for sound 64 MiB KDFs in the QEMU guest (10 s each under load), which then ran four at a
time on two vCPUs and made the boot slower (the dm boot bench: KDF critical path 28 s -> 55 s)."""
PASS_LIMIT: Final = 10.0
"""Seconds a waiting run may be passed by later ones that fit: after that it goes next (no starvation)."""
_NO_LIMIT: Final = 1 << 60  # cgroup v1 writes "no limit" as a number near 2**63


def available_memory_kib(meminfo: str = MEMINFO) -> int | None:
    """The kernel's MemAvailable estimate, or None where it cannot be read."""
    try:
        with open(meminfo, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _read_bytes(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value >= _NO_LIMIT else value


def _inactive_file(directory: Path, key: str) -> int:
    """The page cache the kernel drops first (``memory.stat``), which a cgroup's usage counts as used."""
    try:
        for line in (directory / "memory.stat").read_text(encoding="ascii").splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        return 0
    return 0


def _room_up_to(
    directory: Path, root: Path, limit_name: str, usage_name: str, inactive_key: str
) -> int | None:
    """The least ``limit - usage`` (bytes) of ``directory`` and its ancestors up to ``root``, usage without
    the inactive page cache (reading a big file must not shrink the budget to nothing); None: no limit."""
    room: int | None = None
    current = directory
    while True:
        limit = _read_bytes(current / limit_name)
        if limit is not None:
            usage = max(0, (_read_bytes(current / usage_name) or 0) - _inactive_file(current, inactive_key))
            room = max(0, limit - usage) if room is None else min(room, max(0, limit - usage))
        if current == root or root not in current.parents:
            return room
        current = current.parent


def cgroup_memory_room_kib(proc_cgroup: str = PROC_CGROUP, root: str = CGROUP_ROOT) -> int | None:
    """The room left under this process' memory cgroup limits (v2 ``memory.max``, v1
    ``memory.limit_in_bytes``, the cgroup's and every ancestor's), in KiB; None where nothing limits it."""
    try:
        lines = Path(proc_cgroup).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    base = Path(root)
    rooms: list[int] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        relative = path.lstrip("/")
        if hierarchy == "0" and controllers == "":  # v2: the whole tree, or "unified" beside v1 ones
            for tree in (base, base / "unified"):
                if (tree / "cgroup.controllers").exists():
                    found = _room_up_to(
                        tree / relative, tree, "memory.max", "memory.current", "inactive_file"
                    )
                    if found is not None:
                        rooms.append(found)
                    break
        elif "memory" in controllers.split(","):
            tree = base / "memory"
            found = _room_up_to(
                tree / relative, tree, "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"
            )
            if found is not None:
                rooms.append(found)
    return min(rooms) // 1024 if rooms else None


def memory_budget_kib() -> int | None:
    """Half of the memory KDF runs may take at once here; None where nothing says (memory does not limit)."""
    known = [kib for kib in (available_memory_kib(), cgroup_memory_room_kib()) if kib is not None]
    return min(known) // 2 if known else None


@dataclass(eq=False)
class KdfTurn:
    """One run's turn: what it holds, and since when (for its lease)."""

    load: KdfLoad
    threads: int
    queued: float
    granted: anyio.Event = field(default_factory=anyio.Event)
    since: float = math.inf
    holds_cpus: bool = True


class KdfTurns:
    """The turns of one event loop's KDF runs (``turn = await acquire(load)`` before the run,
    ``release(turn)`` after it)."""

    def __init__(
        self,
        *,
        cpus: int,
        memory_kib: int | None,
        lease: float = LEASE,
        pass_limit: float = PASS_LIMIT,
        measure_memory: Callable[[], int | None] | None = None,
    ) -> None:
        self._cpus = max(1, cpus)
        self._memory_kib = memory_kib  # None: memory does not limit
        self._measure_memory = measure_memory  # read again whenever no run holds a turn
        self._lease = lease
        self._pass_limit = pass_limit
        self._running: list[KdfTurn] = []
        self._queue: list[KdfTurn] = []

    @classmethod
    def for_this_machine(cls) -> KdfTurns:
        """Turns for the CPUs this process may use; the memory budget is measured at the first acquire."""
        from volumed.storage.luks2 import usable_cpus  # loaded already: a KDF is about to run

        return cls(cpus=usable_cpus(), memory_kib=None, measure_memory=memory_budget_kib)

    @property
    def running(self) -> int:
        return len(self._running)

    def _fits(self, turn: KdfTurn) -> bool:
        if not any(t.holds_cpus for t in self._running):
            return True  # alone (an overdue run holds nothing back for good: review62 H1)
        threads = sum(t.threads for t in self._running if t.holds_cpus)
        if threads + turn.threads > self._cpus:
            return False
        memory = sum(t.load.memory_kib for t in self._running)
        return self._memory_kib is None or memory + turn.load.memory_kib <= self._memory_kib

    def _grant_waiting(self) -> None:
        now = anyio.current_time()
        for turn in self._running:
            if turn.holds_cpus and now - turn.since >= self._lease:
                turn.holds_cpus = False  # overdue: its CPUs are shared from now on (its memory is not)
        for turn in list(self._queue):
            if self._fits(turn):
                self._queue.remove(turn)
                self._start(turn, now)
            elif now - turn.queued >= self._pass_limit:
                break  # it has waited long enough: nothing behind it passes it any more

    def _start(self, turn: KdfTurn, now: float) -> None:
        turn.since = now
        self._running.append(turn)
        turn.granted.set()

    def _next_lease_end(self) -> float:
        ends = [t.since + self._lease for t in self._running if t.holds_cpus]
        return min(ends, default=math.inf)

    async def acquire(self, load: KdfLoad) -> KdfTurn:
        await anyio.lowlevel.checkpoint_if_cancelled()
        now = anyio.current_time()
        if not self._running and self._measure_memory is not None:
            self._memory_kib = self._measure_memory()
        turn = KdfTurn(load, threads=max(1, min(load.threads, self._cpus)), queued=now)
        # what waits does not fit now (nothing was freed since it was last looked at); a newcomer that fits
        # starts beside it, unless one of them has waited past the pass limit
        if self._fits(turn) and not any(now - t.queued >= self._pass_limit for t in self._queue):
            self._start(turn, now)
            await anyio.lowlevel.cancel_shielded_checkpoint()
            return turn
        self._queue.append(turn)
        try:
            while not turn.granted.is_set():
                with anyio.move_on_after(max(0.0, self._next_lease_end() - anyio.current_time())):
                    await turn.granted.wait()
                if not turn.granted.is_set():
                    self._grant_waiting()  # a lease ended: the overdue run's CPUs are free for others
        except BaseException:
            if turn.granted.is_set():  # granted, then cancelled before it could run: give it back
                self.release(turn)
            else:
                self._queue.remove(turn)
                self._grant_waiting()  # the ones behind it may fit now
            raise
        return turn

    def release(self, turn: KdfTurn) -> None:
        self._running.remove(turn)
        self._grant_waiting()
