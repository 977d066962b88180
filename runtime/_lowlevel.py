"""Scheduling primitives for the hot paths of the state and the controller runtime.

anyio looks the running backend up on every ``anyio.lowlevel.checkpoint()`` and ``anyio.Event()`` (through
sniffio); on asyncio that lookup costs more than an in-memory write and was a quarter of a controller chain's
time. These take asyncio's own objects when an asyncio loop runs in this thread and anyio's otherwise (trio),
with anyio's semantics either way: a checkpoint yields to the loop and is a cancellation point; an event wait
is cancellable by anyio cancel scopes.
"""

from __future__ import annotations

import asyncio
import types
from asyncio import _get_running_loop  # C-accelerated: the running asyncio loop of this thread, or None
from asyncio import current_task as _current_task
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.lowlevel

if TYPE_CHECKING:
    from collections.abc import Generator


class Wakeup(Protocol):
    """The part of ``asyncio.Event`` / ``anyio.Event`` the runtime uses: set once, wait until set."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> Any: ...


@types.coroutine
def _reschedule() -> Generator[None]:
    # A bare yield is what asyncio.sleep(0) does: the task goes to the back of the ready queue, and a pending
    # cancellation (anyio cancels a scope's tasks with Task.cancel) is raised when it resumes.
    yield


def _in_asyncio_task() -> bool:
    # An asyncio loop may run in this thread without the caller being an asyncio task: trio in guest mode
    # runs its tasks inside the host loop's callbacks, and a bare yield would reach trio.
    loop = _get_running_loop()
    return loop is not None and _current_task(loop) is not None


async def checkpoint() -> None:
    """Yield to the event loop once (``anyio.lowlevel.checkpoint`` without the backend lookup)."""
    if _in_asyncio_task():
        await _reschedule()
    else:
        await anyio.lowlevel.checkpoint()


def new_wakeup() -> Wakeup:
    """A fresh event for the running loop (``anyio.Event()`` without the backend lookup)."""
    if _in_asyncio_task():
        return asyncio.Event()
    return anyio.Event()


class YieldBudget:
    """A cooperative budget (as in Tokio) for operations that complete without waiting.

    An in-memory write never has to wait, so suspending on each one would cost a trip through the event loop
    per write for nothing. Instead each call spends one unit and every ``every``-th call yields: a task
    calling such operations in a tight loop still lets the others (watchers, controllers) run regularly,
    and the calls in between cost nothing.
    """

    __slots__ = ("_every", "_left")

    def __init__(self, every: int) -> None:
        if every < 1:
            raise ValueError(f"a yield budget needs at least 1 call per yield, got {every}")
        self._every = every
        self._left = every

    def spend(self) -> bool:
        """Account for one operation; True when the budget is used up and the caller must `checkpoint`.

        Synchronous, so the common case costs no coroutine: ``if budget.spend(): await checkpoint()``.
        """
        left = self._left - 1
        if left:
            self._left = left
            return False
        self._left = self._every
        return True
