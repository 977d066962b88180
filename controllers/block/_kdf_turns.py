"""Turns for key-slot KDF runs: as many at once as this machine's CPUs and memory hold, in arrival order.

A KDF run holds ``min(lanes, CPUs)`` threads and its argon2 memory until it ends. A fixed number of turns
(half the CPUs) suited two-lane KDFs on two CPUs, but ran one-lane KDFs one at a time there with a CPU left
idle for the whole unlock phase (the dm boot bench: ten one-lane volumes, two vCPUs), let two four-lane
KDFs share four CPUs with eight threads, and ignored memory, so two 1 GiB KDFs could start together on a
node with 2 GiB. Here a run starts when its threads fit the CPUs and its memory fits half of the memory
available when the turns were made, or when nothing else runs (a run too big for the budget still runs,
alone). Turns are granted strictly first come, first served: a big run is never passed by small ones.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

if TYPE_CHECKING:
    from volumed.storage.luks2 import KdfLoad

MEMINFO = "/proc/meminfo"


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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


@dataclass(eq=False)
class _Waiter:
    load: KdfLoad
    granted: anyio.Event = field(default_factory=anyio.Event)


class KdfTurns:
    """The turns of one event loop's KDF runs (``acquire`` before the run, ``release`` after it)."""

    def __init__(self, *, cpus: int, memory_kib: int | None) -> None:
        self._cpus = max(1, cpus)
        self._memory_kib = memory_kib  # None: memory does not limit
        self._running = 0
        self._threads = 0
        self._memory_used = 0
        self._queue: deque[_Waiter] = deque()

    @classmethod
    def for_this_machine(cls) -> KdfTurns:
        available = available_memory_kib()
        return cls(cpus=usable_cpus(), memory_kib=None if available is None else available // 2)

    @property
    def running(self) -> int:
        return self._running

    def _fits(self, load: KdfLoad) -> bool:
        if self._running == 0:
            return True
        if self._threads + min(load.threads, self._cpus) > self._cpus:
            return False
        return self._memory_kib is None or self._memory_used + load.memory_kib <= self._memory_kib

    def _take(self, load: KdfLoad) -> None:
        self._running += 1
        self._threads += min(load.threads, self._cpus)
        self._memory_used += load.memory_kib

    def _grant_waiting(self) -> None:
        while self._queue and self._fits(self._queue[0].load):
            waiter = self._queue.popleft()
            self._take(waiter.load)
            waiter.granted.set()

    async def acquire(self, load: KdfLoad) -> None:
        await anyio.lowlevel.checkpoint_if_cancelled()
        if not self._queue and self._fits(load):
            self._take(load)
            await anyio.lowlevel.cancel_shielded_checkpoint()
            return
        waiter = _Waiter(load)
        self._queue.append(waiter)
        try:
            await waiter.granted.wait()
        except BaseException:
            if waiter.granted.is_set():  # granted, then cancelled before it could run: give it back
                self.release(load)
            else:
                self._queue.remove(waiter)
                self._grant_waiting()  # the one behind it may fit now
            raise

    def release(self, load: KdfLoad) -> None:
        self._running -= 1
        self._threads -= min(load.threads, self._cpus)
        self._memory_used -= load.memory_kib
        self._grant_waiting()
