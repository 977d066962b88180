"""Per-controller counters: what an operator looks at to see whether a controller is healthy."""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final

if TYPE_CHECKING:
    from collections.abc import Callable

DURATION_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)
"""Upper bounds (seconds) of the reconcile-duration histogram: from a no-op reconcile to a KDF or mkfs."""


@final
@dataclass(frozen=True, slots=True)
class ControllerStats:
    """A point-in-time copy of one controller's counters.

    Attributes:
        name: the controller.
        wakeups: input changes that notified the controller (before coalescing).
        reconciles: reconcile calls that started (whole-controller runs, or one per key for queue
            controllers).
        errors: reconciles that raised (each one is retried with backoff).
        reads: get/list calls made through the controller's context.
        writes: create/update/destroy/teardown/finalizer changes made through the controller's context.
        queue_length: keys waiting (ready or delayed) in a queue controller; 0 or 1 (a wake-up is pending)
            otherwise.
        failure_streak: consecutive failures of the whole controller now (0 after a success).
        reconcile_seconds: time spent in reconciles that ended (succeeded or failed), in total.
        reconcile_seconds_max: the longest of them.
        duration_buckets: (upper bound, reconciles that ended within it) for each of `DURATION_BUCKETS`,
            cumulative as in a Prometheus histogram; ``reconciles_ended`` is the +Inf bucket.
        reconciles_ended: reconciles that ended (``reconciles`` minus the ones running now or cancelled).
    """

    name: str
    wakeups: int
    reconciles: int
    errors: int
    reads: int
    writes: int
    queue_length: int
    failure_streak: int
    reconcile_seconds: float = 0.0
    reconcile_seconds_max: float = 0.0
    duration_buckets: tuple[tuple[float, int], ...] = ()
    reconciles_ended: int = 0


@final
class ControllerMetrics:
    """The live counters of one controller; the runtime and the controller's context increment them."""

    __slots__ = (
        "_buckets",
        "_ended",
        "_max",
        "_queue_length",
        "_seconds",
        "errors",
        "failure_streak",
        "name",
        "reads",
        "reconciles",
        "wakeups",
        "writes",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.wakeups = 0
        self.reconciles = 0
        self.errors = 0
        self.reads = 0
        self.writes = 0
        self.failure_streak = 0
        self._queue_length: Callable[[], int] = lambda: 0
        self._seconds = 0.0
        self._max = 0.0
        self._ended = 0
        self._buckets = [0] * len(DURATION_BUCKETS)  # not cumulative: one count per bucket

    def track_queue(self, length: Callable[[], int]) -> None:
        """Report the queue length through ``length`` (read when a snapshot is taken)."""
        self._queue_length = length

    def reconcile_started(self) -> float:
        """Count a reconcile; returns its start time, to hand to `reconcile_ended`."""
        self.reconciles += 1
        return time.monotonic()

    def reconcile_ended(self, started: float) -> float:
        """Record (and return) the duration of a reconcile `reconcile_started` returned ``started`` for."""
        seconds = max(0.0, time.monotonic() - started)
        self._seconds += seconds
        self._max = max(self._max, seconds)
        self._ended += 1
        index = bisect.bisect_left(DURATION_BUCKETS, seconds)
        if index < len(self._buckets):
            self._buckets[index] += 1
        return seconds

    def snapshot(self) -> ControllerStats:
        """Copy the counters now."""
        cumulative: list[tuple[float, int]] = []
        total = 0
        for bound, count in zip(DURATION_BUCKETS, self._buckets, strict=True):
            total += count
            cumulative.append((bound, total))
        return ControllerStats(
            name=self.name,
            wakeups=self.wakeups,
            reconciles=self.reconciles,
            errors=self.errors,
            reads=self.reads,
            writes=self.writes,
            queue_length=self._queue_length(),
            failure_streak=self.failure_streak,
            reconcile_seconds=self._seconds,
            reconcile_seconds_max=self._max,
            duration_buckets=tuple(cumulative),
            reconciles_ended=self._ended,
        )
