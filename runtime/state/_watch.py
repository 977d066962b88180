"""Watch machinery shared by every backend: one bounded event log per kind, read by cursors.

Each kind has a ring buffer of the last ``capacity`` events, filled only while the kind has open watchers
(nobody else reads it, and the old values its events hold should not outlive their use). A writer appends
(O(1), no per-watcher work) and wakes waiting readers; each watcher keeps only a cursor, a view of the
resources it has reported (references to shared frozen values, used to rewrite query matches and to
resynchronise) and a queue of synthetic events.

A watcher whose cursor falls out of the ring (it was slower than ``capacity`` writes) is *resynchronised on
its own*: it re-lists the kind and emits the differences from its view (CREATED / UPDATED with old /
DESTROYED, sorted by id). Nothing else notices: writers never block on readers and other watchers go on.
"""

from __future__ import annotations

import traceback
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, final

import structlog

from volumed.runtime._lowlevel import Wakeup, checkpoint, new_wakeup
from volumed.runtime.resource import Resource

from ._errors import StateClosedError, StateError
from ._events import Event, EventType, make_event

if TYPE_CHECKING:
    from types import TracebackType

_log = structlog.get_logger("volumed.runtime.state")

# Yield to the event loop after this many events delivered without suspending, so a hot watcher cannot starve
# other tasks.
_FAIRNESS_BATCH = 128


@final
class EventLog:
    """The bounded history of one kind's events (cosi's per-type ring buffer)."""

    __slots__ = ("_buffer", "_capacity", "_closed", "_head", "_listeners", "_waiter", "watchers")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"watch history capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._buffer: list[Event | None] = [None] * capacity
        self._head = 0
        self._waiter: Wakeup | None = None
        self._closed: StateError | None = None
        self._listeners: tuple[tuple[Listener], ...] = ()  # one 1-tuple per registration: its stop() token
        self.watchers = 0  # open watchers reading this log (writers yield more often while there are any)

    @property
    def head(self) -> int:
        """Sequence number the next event will get."""
        return self._head

    @property
    def oldest(self) -> int:
        """Sequence number of the oldest event still held."""
        return max(0, self._head - self._capacity)

    @property
    def closed(self) -> StateError | None:
        """Why the log was closed, or None while open."""
        return self._closed

    def append(self, event: Event) -> None:
        """Record ``event``, call the listeners and wake readers (never blocks, whatever the readers do)."""
        # Only watchers read the buffer, from the head at their start: with none open the event is not kept,
        # so it dies young instead of aging through the collector's generations.
        self._buffer[self._head % self._capacity] = event if self.watchers else None
        self._head += 1
        try:
            for (listener,) in self._listeners:
                try:
                    listener(event)
                except Exception as exc:  # the write has committed: a listener's bug must not fail it
                    _log.error(
                        "state listener failed; the write stands",
                        listener=repr(listener),
                        error=repr(exc),
                        exception="".join(traceback.format_exception(exc)),
                    )
        finally:
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None
                waiter.set()

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event appended from now on; returns the function that stops it."""
        registration = (listener,)  # stop() removes this one, even if the listener is registered twice
        self._listeners = (*self._listeners, registration)  # a new tuple: appends in progress keep their own

        def stop() -> None:
            self._listeners = tuple(known for known in self._listeners if known is not registration)

        return stop

    def read(self, seq: int) -> Event:
        """The event with sequence number ``seq`` (``oldest <= seq < head``)."""
        event = self._buffer[seq % self._capacity]
        assert event is not None
        return event

    def close(self, error: StateError) -> None:
        """End every watch of this kind with an ERRORED event carrying ``error``."""
        self._closed = error
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    async def wait_past(self, seq: int) -> None:
        """Wait until an event with sequence number ``seq`` exists, or the log is closed."""
        while self._head <= seq and self._closed is None:
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = new_wakeup()
            await waiter.wait()


class EventStream(Protocol):
    """What `watch` and `watch_kind` return: an async iterator of events, closed by ``async with`` or aclose.

    Contract:
        - Registration happens when ``watch``/``watch_kind`` returns: no change made after the call is missed.
        - Events arrive in commit order (a kind watch sees all of its kind's events in that order).
        - The stream never ends by itself while the state is open; when the state closes it yields one ERRORED
          event and stops.
        - A consumer slower than the backend's watch history is resynchronised (see ``resyncs``): it receives
          the net differences instead of every intermediate event, and nothing else is affected.
        - Cancelling the consumer cancels only its ``__anext__``; the stream stays usable.
    """

    @property
    def resyncs(self) -> int:
        """How many times this stream fell behind and was resynchronised."""
        ...

    def __aiter__(self) -> EventStream: ...

    async def __anext__(self) -> Event: ...

    async def __aenter__(self) -> EventStream: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def aclose(self) -> None:
        """Stop the stream; a later ``__anext__`` raises StopAsyncIteration."""
        ...


Listener = Callable[[Event], None]
"""Called synchronously with each committed event of a kind (see `StateReader.listen`)."""

Matcher = Callable[[Resource[Any]], bool]
Snapshot = Callable[[], Sequence[Resource[Any]]]


@final
class Watcher:
    """One watch over one kind's log, optionally narrowed to one id or a query (see the module docstring)."""

    __slots__ = (
        "_closed",
        "_counted",
        "_cursor",
        "_done",
        "_log",
        "_match",
        "_pending",
        "_resyncs",
        "_snapshot",
        "_view",
    )

    def __init__(
        self,
        log: EventLog,
        snapshot: Snapshot,
        match: Matcher | None,
        *,
        bootstrap: bool,
        single: bool,
    ) -> None:
        self._log = log
        self._snapshot = snapshot
        self._match = match
        self._cursor = log.head
        self._view: dict[str, Resource[Any]] = {}
        self._pending: deque[Event] = deque()
        self._resyncs = 0
        self._closed = False
        self._done = False
        if single:
            current = [r for r in snapshot() if match is None or match(r)]
            if current:
                self._view[current[0].metadata.id] = current[0]
                self._pending.append(make_event(EventType.CREATED, current[0]))
            else:
                self._pending.append(Event(EventType.NOOP))
        elif bootstrap:
            for resource in snapshot():
                if match is None or match(resource):
                    self._view[resource.metadata.id] = resource
                    self._pending.append(make_event(EventType.CREATED, resource))
            self._pending.append(Event(EventType.BOOTSTRAPPED))
        else:
            # Without bootstrap the consumer still "knows" the current items: a later update is UPDATED, not
            # CREATED, and a resync diffs against them.
            for resource in snapshot():
                if match is None or match(resource):
                    self._view[resource.metadata.id] = resource
        log.watchers += 1
        self._counted = True

    def __del__(self) -> None:
        # A watcher dropped without aclose stops counting as a reader of the log.
        if getattr(self, "_counted", False):
            self._counted = False
            self._log.watchers -= 1

    @property
    def resyncs(self) -> int:
        """How many times this watcher fell behind and was resynchronised."""
        return self._resyncs

    def __aiter__(self) -> Watcher:
        return self

    async def __aenter__(self) -> Watcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop this watcher (it holds nothing in the log, so it is simply forgotten)."""
        self._closed = True
        self._pending.clear()
        self._view.clear()
        if self._counted:
            self._counted = False
            self._log.watchers -= 1

    async def __anext__(self) -> Event:
        delivered = 0
        while True:
            if self._closed or self._done:
                raise StopAsyncIteration
            pending = self._pending
            if pending:
                return pending.popleft()
            log = self._log
            if self._cursor < log.head:
                if self._cursor < log.oldest:
                    self._resync()
                    continue
                event = log.read(self._cursor)
                self._cursor += 1
                out = self._translate(event)
                if out is not None:
                    return out
                delivered += 1
                if delivered >= _FAIRNESS_BATCH:
                    delivered = 0
                    await checkpoint()
                continue
            error = log.closed
            if error is not None:
                self._done = True
                return Event(EventType.ERRORED, error=error)
            await log.wait_past(self._cursor)

    def _translate(self, event: Event) -> Event | None:
        """Rewrite a kind event for this watcher's query; None when it does not concern this watcher."""
        resource = event.resource
        assert resource is not None
        view = self._view
        rid = resource.metadata.id
        previous = view.get(rid)
        if event.type is EventType.DESTROYED:
            if previous is None:
                return None
            del view[rid]
            return event
        match = self._match
        if match is None or match(resource):
            view[rid] = resource
            if previous is None:
                return event if event.type is EventType.CREATED else make_event(EventType.CREATED, resource)
            if event.type is EventType.UPDATED and event.old is previous:
                return event
            return make_event(EventType.UPDATED, resource, previous)
        if previous is None:
            return None
        del view[rid]
        return make_event(EventType.DESTROYED, resource, previous)

    def _resync(self) -> None:
        """Re-list and queue the differences from what this watcher has reported."""
        self._resyncs += 1
        match = self._match
        current = {r.metadata.id: r for r in self._snapshot() if match is None or match(r)}
        self._cursor = self._log.head
        view = self._view
        for rid in sorted(view.keys() | current.keys()):
            old = view.get(rid)
            new = current.get(rid)
            if old is new:
                continue
            if new is None:
                assert old is not None
                self._pending.append(make_event(EventType.DESTROYED, old))
            elif old is None:
                self._pending.append(make_event(EventType.CREATED, new))
            elif old.metadata.created != new.metadata.created or new.version < old.version:
                # Destroyed and created again while this watcher was behind.
                self._pending.append(make_event(EventType.DESTROYED, old))
                self._pending.append(make_event(EventType.CREATED, new))
            else:
                self._pending.append(make_event(EventType.UPDATED, new, old))
        self._view = current


def closed_error(what: str) -> StateClosedError:
    """The error a closed backend ends its watches with."""
    return StateClosedError(f"{what} was closed")
