"""A coalescing wake-up signal: the capacity-1 channel that makes reconciles level-triggered."""

from __future__ import annotations

from typing import final

from volumed.runtime._lowlevel import Wakeup, checkpoint, new_wakeup


@final
class WakeSignal:
    """Collapses any number of notifications into one pending wake-up.

    `notify` never blocks and never queues more than one wake-up: ten input changes that arrive while the
    controller is busy produce exactly one more reconcile, which re-reads everything (level-triggered, like
    COSI's buffered channel of capacity one). There is one consumer, the controller's loop; several waiters
    are allowed, but each pending wake-up is consumed by exactly one of them. Bound a wait with
    ``anyio.move_on_after`` (that is how ``requeue_after`` is implemented).

    Safe to create outside an event loop (the anyio event is made lazily by the waiter).
    """

    __slots__ = ("_notifications", "_pending", "_waiter")

    def __init__(self) -> None:
        self._pending = False
        self._waiter: Wakeup | None = None
        self._notifications = 0

    @property
    def pending(self) -> bool:
        """Whether a wake-up is waiting to be consumed."""
        return self._pending

    @property
    def notifications(self) -> int:
        """How many times `notify` was called (coalesced or not); for metrics and tests."""
        return self._notifications

    def notify(self) -> None:
        """Mark a wake-up as pending (idempotent until it is consumed)."""
        self._notifications += 1
        if self._pending:
            return
        self._pending = True
        if self._waiter is not None:
            self._waiter.set()

    def clear(self) -> bool:
        """Consume a pending wake-up without waiting; returns whether one was pending.

        The controller loop calls it right before a reconcile: whatever was notified before that reconcile
        started is seen by it (level-triggered), so it must not cause another one.
        """
        pending = self._pending
        self._pending = False
        return pending

    async def wait(self) -> None:
        """Wait for a pending wake-up and consume it.

        Always a cancellation point, even when a wake-up is already pending; a cancelled wait consumes
        nothing.
        """
        await checkpoint()
        while not self._pending:
            if self._waiter is None or self._waiter.is_set():
                self._waiter = new_wakeup()
            await self._waiter.wait()
        self._pending = False
