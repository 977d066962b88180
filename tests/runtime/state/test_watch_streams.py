"""Watch streams: closing the state, fairness, memory that does not grow with history, ring bounds."""

from __future__ import annotations

import gc

import anyio
import anyio.lowlevel
import pytest

from volumed.runtime import (
    EventType,
    InMemoryCore,
    Kind,
    LabelQuery,
    Resource,
    Spec,
    StateClosedError,
    WrappedState,
)
from volumed.runtime.state._watch import EventLog

KIND = Kind("ns", "Counters.test.volumed.dev")


class Counter(Spec):
    n: int = 0


async def test_closing_the_state_ends_watches_with_errored() -> None:
    core = InMemoryCore()
    single = core.watch(KIND.pointer("a"))
    kind = core.watch_kind(KIND)
    assert (await single.__anext__()).type is EventType.NOOP
    core.close()
    for stream in (single, kind):
        with anyio.fail_after(1):
            event = await stream.__anext__()
        assert event.type is EventType.ERRORED
        assert isinstance(event.error, StateClosedError)
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()
    # A watch started after close ends at once too.
    late = core.watch_kind(Kind("ns", "Others.test.volumed.dev"))
    assert (await late.__anext__()).type is EventType.ERRORED


async def test_many_slow_and_fast_watchers_never_block_the_writer() -> None:
    state = WrappedState(InMemoryCore(history=16))
    r = await state.create(Resource.new("ns", KIND.type, "a", Counter()))
    stalled = [state.watch_kind(KIND) for _ in range(20)]
    with anyio.fail_after(5):
        for i in range(1000):
            r = await state.update(r.with_spec(Counter(n=i + 1)))
    for stream in stalled:
        event = await stream.__anext__()
        assert (event.type, event.resource) == (EventType.UPDATED, r)
        assert stream.resyncs == 1


def test_event_log_bounds() -> None:
    log = EventLog(4)
    assert (log.head, log.oldest) == (0, 0)
    for _ in range(10):
        log.append(object())  # type: ignore[arg-type]
    assert (log.head, log.oldest) == (10, 6)
    with pytest.raises(ValueError, match="at least 1"):
        EventLog(0)


async def test_a_hot_watcher_yields_to_other_tasks() -> None:
    """A consumer draining a long backlog of events it filters out still lets other tasks run."""
    state = WrappedState(InMemoryCore(history=4096))
    async with state.watch_kind(KIND, labels=None) as events:
        filtered = state.watch(KIND.pointer("never"))
        assert (await filtered.__anext__()).type is EventType.NOOP
        r = await state.create(Resource.new("ns", KIND.type, "a", Counter()))
        for i in range(2000):
            r = await state.update(r.with_spec(Counter(n=i + 1)))
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            with anyio.move_on_after(0.2):
                await filtered.__anext__()
            tg.cancel_scope.cancel()
        assert ticks > 5
        assert (await events.__anext__()).type is EventType.CREATED


async def test_resync_reports_recreation_and_query_flips() -> None:
    """Behind a short history: a destroyed-and-recreated resource comes back as DESTROYED then CREATED, and a
    query watcher sees resources that started or stopped matching as CREATED / DESTROYED."""
    state = WrappedState(InMemoryCore(history=2))
    old = await state.create(Resource.new("ns", KIND.type, "again", Counter(n=1)))
    leaving = await state.create(Resource.new("ns", KIND.type, "leaving", Counter(), labels={"on": "1"}))
    joining = await state.create(Resource.new("ns", KIND.type, "joining", Counter()))
    everything = state.watch_kind(KIND)
    labelled = state.watch_kind(KIND, labels=LabelQuery.equal(on="1"))
    await state.destroy(old.pointer)
    new = await state.create(Resource.new("ns", KIND.type, "again", Counter(n=2)))
    await state.update(leaving.with_metadata(labels={}))
    joined = await state.update(joining.with_metadata(labels={"on": "1"}))
    for _ in range(3):  # overflow the history
        joined = await state.update(joined.with_spec(Counter(n=joined.spec.n + 1)))

    got = [await everything.__anext__() for _ in range(4)]
    assert [(e.type, e.resource.id if e.resource else None) for e in got] == [
        (EventType.DESTROYED, "again"),
        (EventType.CREATED, "again"),
        (EventType.UPDATED, "joining"),
        (EventType.UPDATED, "leaving"),
    ]
    assert got[0].resource == old
    assert got[1].resource == new
    flips = [await labelled.__anext__() for _ in range(2)]
    assert [(e.type, e.resource.id if e.resource else None) for e in flips] == [
        (EventType.CREATED, "joining"),
        (EventType.DESTROYED, "leaving"),
    ]
    assert flips[0].resource == joined
    assert everything.resyncs == labelled.resyncs == 1


async def test_a_watcher_that_suspends_per_event_keeps_up_with_a_tight_writer() -> None:
    """Writes of a watched kind yield each time: a consumer sending each event on is never resynchronised."""
    state = WrappedState(InMemoryCore())
    current = await state.create(Resource.new(KIND.namespace, KIND.type, "x", Counter()))
    received = 0
    async with state.watch_kind(KIND) as events, anyio.create_task_group() as tg:

        async def consume() -> None:
            nonlocal received
            async for event in events:
                received += 1
                await anyio.lowlevel.checkpoint()  # e.g. one socket send per event
                if event.resource is not None and event.resource.spec.n == 3000:
                    return

        tg.start_soon(consume)
        for n in range(1, 3001):  # three times the watch history
            current = await state.update(current.with_spec(Counter(n=n)))
    assert events.resyncs == 0
    assert received == 3000


async def test_only_open_watchers_make_writes_yield() -> None:
    core = InMemoryCore()
    watched = core._index.watched
    assert not watched(KIND.namespace, KIND.type)
    first, second = core.watch_kind(KIND), core.watch(KIND.pointer("a"))
    assert watched(KIND.namespace, KIND.type)
    await first.aclose()
    await first.aclose()  # closing twice counts once
    assert watched(KIND.namespace, KIND.type)
    del second  # dropped without aclose: no longer counted once collected
    assert not watched(KIND.namespace, KIND.type)


class Tracked(Spec):
    """A spec whose live instances the test counts."""

    n: int = 0


def _live_tracked() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is Tracked)


async def test_unwatched_writes_do_not_keep_old_versions_alive() -> None:
    """The watch history holds events only while somebody watches: nobody reads them otherwise."""
    state = WrappedState(InMemoryCore(history=64))
    r = await state.create(Resource.new("ns", "Trackeds.test.volumed.dev", "a", Tracked()))
    for i in range(20):
        r = await state.update(r.with_spec(Tracked(n=i + 1)))
    assert _live_tracked() == 1  # only the current value; the history used to pin all 21

    # A watcher opened now starts from the current value and sees every later write, old value included.
    with anyio.fail_after(5):
        async with state.watch_kind(r.kind, bootstrap=True) as events:
            first = await events.__anext__()
            assert (first.type, first.resource) == (EventType.CREATED, r)
            assert (await events.__anext__()).type is EventType.BOOTSTRAPPED
            previous = r
            for i in range(3):
                r = await state.update(r.with_spec(Tracked(n=100 + i)))
            for _ in range(3):
                event = await events.__anext__()
                assert (event.type, event.old) == (EventType.UPDATED, previous)
                previous = event.resource
            assert previous == r
