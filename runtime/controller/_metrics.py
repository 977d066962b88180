"""Per-controller counters: what an operator looks at to see whether a controller is healthy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from collections.abc import Callable


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
    """

    name: str
    wakeups: int
    reconciles: int
    errors: int
    reads: int
    writes: int
    queue_length: int
    failure_streak: int


@final
class ControllerMetrics:
    """The live counters of one controller; the runtime and the controller's context increment them."""

    __slots__ = (
        "_queue_length",
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

    def track_queue(self, length: Callable[[], int]) -> None:
        """Report the queue length through ``length`` (read when a snapshot is taken)."""
        self._queue_length = length

    def snapshot(self) -> ControllerStats:
        """Copy the counters now."""
        return ControllerStats(
            name=self.name,
            wakeups=self.wakeups,
            reconciles=self.reconciles,
            errors=self.errors,
            reads=self.reads,
            writes=self.writes,
            queue_length=self._queue_length(),
            failure_streak=self.failure_streak,
        )
