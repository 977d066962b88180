"""Event sources: what wakes a controller besides changes of its inputs (a timer, inotify, uevents)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, final

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from volumed.runtime.resource import Pointer


class Wake(Protocol):
    """What a source calls to wake its controller: ``wake()`` for a `Controller`, ``wake(pointer, ...)``
    for a `QController` (the keys to reconcile). Never blocks; call it from the event loop's thread."""

    def __call__(self, *keys: Pointer) -> None: ...


@final
@dataclass(frozen=True, slots=True)
class EventSource:
    """Something outside the state that wakes a controller; declare it in the controller's ``sources``.

    The runtime runs ``run(wake)`` as a task for as long as the controller is registered and the runtime
    runs, and cancels it when the runtime stops. ``run`` watches whatever it watches and calls ``wake``
    when that changed. Contract:

    - Wake-ups are coalesced like input changes: any number of ``wake()`` calls while a `Controller` is busy
      give one more reconcile, which is not told why. A `QController`'s source names keys (``wake(ptr)``);
      they go into its queue like mapped input changes (deduplicated). ``wake()`` without keys on a
      `QController` raises `ValueError` in the source.
    - A source that raises is logged (quietly at boot, like reconciles; see ``Runtime(quiet_failures=)``)
      and started again after the runtime's backoff; the streak is forgotten once a run has called
      ``wake``. It never stops the runtime or its controller. A source that returns has ended for good (say,
      the kernel lacks what it needs): the controller keeps its other wake-ups, such as a polling
      ``ctx.requeue_after``.
    - What changed while a source was not yet (or no longer) watching is not seen by it: a source calls
      ``wake`` once it watches, so a controller re-reads the world after every (re)start of its sources.
    - ``wake`` must be called from the event loop's thread; a source that reads in a worker thread calls it
      through ``anyio.from_thread.run_sync``.

    Args:
        name: names the source in logs; unique among one controller's sources.
        run: ``async def run(wake) -> None``, typically a loop that never returns.
    """

    name: str
    run: Callable[[Wake], Awaitable[None]]
