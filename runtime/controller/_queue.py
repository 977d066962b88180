"""A keyed work queue: deduplicated, one worker per key at a time, delayed re-adds and per-key backoff."""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Hashable
from typing import TYPE_CHECKING, Generic, TypeVar, final

import anyio

from volumed.runtime._lowlevel import Wakeup, checkpoint, new_wakeup

from ._backoff import Backoff, BackoffPolicy

if TYPE_CHECKING:
    import random

K = TypeVar("K", bound=Hashable)

_FAIRNESS_BATCH = 32


@final
class KeyedQueue(Generic[K]):
    """The queue behind per-resource controllers (the shape of client-go's workqueue and COSI's QController).

    Contract:

    - **Deduplicated**: a key put while it is already waiting is not added twice.
    - **One at a time per key**: a key handed out by `get` is *processing* until `done`; putting it meanwhile
      marks it dirty, and `done` puts it back once, so a key is never processed twice at the same time and a
      change seen during processing is never lost.
    - **Delayed puts** (`put_after`) keep only the earliest deadline per key; a plain `put` readies the key
      at once and drops its pending delay (level-triggered: the reconcile it triggers decides whether to wait
      again).
    - **Per-key backoff**: `retry` delays a key by its own failure streak; `forget` ends the streak (call it
      after a successful reconcile). Streaks of different keys do not affect each other.
    - FIFO among ready keys. Any number of concurrent `get` callers (the controller's concurrency setting).

    Deadlines use the anyio clock; no background task is needed, `get` sleeps until the earliest deadline.
    """

    __slots__ = (
        "_backoffs",
        "_delayed",
        "_dirty",
        "_gets",
        "_heap",
        "_policy",
        "_processing",
        "_ready",
        "_rng",
        "_seq",
        "_waiters",
    )

    def __init__(self, backoff: BackoffPolicy | None = None, *, rng: random.Random | None = None) -> None:
        self._policy = backoff or BackoffPolicy()
        self._rng = rng
        self._ready: deque[K] = deque()
        self._dirty: set[K] = set()  # keys waiting in _ready, or to be re-readied by done()
        self._processing: set[K] = set()
        self._delayed: dict[K, float] = {}  # key -> earliest deadline (anyio clock)
        self._heap: list[tuple[float, int, K]] = []
        self._seq = 0
        self._backoffs: dict[K, Backoff] = {}
        self._waiters: list[Wakeup] = []
        self._gets = 0

    def __len__(self) -> int:
        """Keys ready to be handed out now (not counting processing or delayed ones)."""
        return len(self._ready)

    @property
    def processing(self) -> int:
        """Keys handed out and not yet `done`."""
        return len(self._processing)

    @property
    def delayed(self) -> int:
        """Keys waiting for a deadline (requeue-after or backoff)."""
        return len(self._delayed)

    def failures(self, key: K) -> int:
        """The current failure streak of ``key`` (0 when it last succeeded or never failed)."""
        backoff = self._backoffs.get(key)
        return backoff.failures if backoff else 0

    def put(self, key: K) -> None:
        """Make ``key`` ready now (deduplicated; deferred until `done` if it is processing)."""
        self._delayed.pop(key, None)
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._ready.append(key)
            self._wake()

    def put_after(self, key: K, delay: float) -> None:
        """Make ``key`` ready after ``delay`` seconds, unless it becomes ready earlier."""
        if delay <= 0:
            self.put(key)
            return
        if key in self._dirty:
            return  # it will be processed anyway, and that reconcile decides about any further delay
        deadline = anyio.current_time() + delay
        current = self._delayed.get(key)
        if current is not None and current <= deadline:
            return
        self._delayed[key] = deadline
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, key))
        self._wake()  # a sleeping getter may have to wake earlier than it planned

    def retry(self, key: K, *, delay: float | None = None) -> float:
        """Record a failure of ``key`` and put it back after ``delay`` (default: its backoff delay).

        Returns the delay used.
        """
        backoff = self._backoffs.get(key)
        if backoff is None:
            backoff = self._backoffs[key] = Backoff(self._policy, self._rng)
        backoff_delay = backoff.failed()
        chosen = backoff_delay if delay is None else delay
        self.put_after(key, chosen)
        return chosen

    def forget(self, key: K) -> None:
        """End the failure streak of ``key`` (after a success, or when the key is gone)."""
        self._backoffs.pop(key, None)

    def done(self, key: K) -> None:
        """Mark ``key`` as no longer processing; if it was put meanwhile, it becomes ready again."""
        self._processing.discard(key)
        if key in self._dirty:
            self._ready.append(key)
            self._wake()

    async def get(self) -> K:
        """Wait for a ready key and mark it processing. The caller must call `done` with it afterwards.

        When a key is ready it is returned without suspending, except every `_FAIRNESS_BATCH` calls, so a busy
        queue is cheap and still lets other tasks run (in-memory state calls rarely suspend). When none is
        ready it yields once before waiting: a key put meanwhile is then taken without building a waiter.
        """
        self._gets += 1
        if self._gets % _FAIRNESS_BATCH == 0 or not self._ready:
            await checkpoint()
        while True:
            if self._heap:  # reading the clock is not free: only when something is delayed
                self._promote_due()
            if self._ready:
                key = self._ready.popleft()
                self._dirty.discard(key)
                self._processing.add(key)
                return key
            timeout = self._heap[0][0] - anyio.current_time() if self._heap else math.inf
            waiter = new_wakeup()
            self._waiters.append(waiter)
            try:
                if timeout == math.inf:
                    await waiter.wait()  # no cancel scope: it costs more than the rest of a busy get
                else:
                    with anyio.move_on_after(timeout):
                        await waiter.wait()
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _promote_due(self) -> None:
        now = anyio.current_time()
        heap = self._heap
        while heap:
            deadline, _, key = heap[0]
            if self._delayed.get(key) != deadline:
                heapq.heappop(heap)  # stale: the key was readied or re-delayed earlier since
            elif deadline <= now:
                heapq.heappop(heap)
                del self._delayed[key]
                self.put(key)
            else:
                break

    def _wake(self) -> None:
        if self._waiters:
            for waiter in self._waiters:
                waiter.set()
            self._waiters.clear()
