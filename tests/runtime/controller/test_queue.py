import random

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given
from hypothesis import strategies as st

from volumed.runtime.controller import BackoffPolicy, KeyedQueue

NO_JITTER = BackoffPolicy(initial=0.02, multiplier=2.0, jitter=0.0, maximum=1.0)


async def test_duplicate_puts_are_deduplicated() -> None:
    queue: KeyedQueue[str] = KeyedQueue()
    for key in ["a", "b", "a", "a", "c", "b"]:
        queue.put(key)
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == ["a", "b", "c"]


async def test_a_key_put_while_processing_comes_back_once_after_done() -> None:
    queue: KeyedQueue[str] = KeyedQueue()
    queue.put("a")
    assert await queue.get() == "a"
    queue.put("a")
    queue.put("a")
    assert len(queue) == 0  # not handed out again while processing
    assert queue.processing == 1
    queue.done("a")
    assert len(queue) == 1
    assert await queue.get() == "a"
    queue.done("a")
    assert len(queue) == 0


async def test_concurrent_workers_never_process_the_same_key_twice_at_once() -> None:
    queue: KeyedQueue[int] = KeyedQueue()
    active: set[int] = set()
    overlaps: list[int] = []
    peak = 0
    processed = 0
    reputs = 100

    async def worker() -> None:
        nonlocal peak, processed, reputs
        while True:
            key = await queue.get()
            if key in active:
                overlaps.append(key)
            active.add(key)
            peak = max(peak, len(active))
            await anyio.lowlevel.checkpoint()
            if reputs:
                reputs -= 1
                queue.put(key % 3)  # re-put keys that may be processing right now
            await anyio.lowlevel.checkpoint()
            active.discard(key)
            processed += 1
            queue.done(key)

    rng = random.Random(1)
    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(worker)
        for _ in range(200):
            queue.put(rng.randrange(6))
            await anyio.lowlevel.checkpoint()
        await anyio.wait_all_tasks_blocked()  # every worker waits in get(): the queue is drained
        assert len(queue) == queue.processing == 0
        tg.cancel_scope.cancel()
    assert overlaps == []
    assert peak > 1  # the workers did run concurrently
    assert processed >= 6


async def test_put_after_waits_and_keeps_the_earliest_deadline() -> None:
    queue: KeyedQueue[str] = KeyedQueue()
    queue.put_after("late", 0.2)
    queue.put_after("soon", 0.05)
    queue.put_after("soon", 0.5)  # a later deadline does not postpone the earlier one
    assert queue.delayed == 2
    start = anyio.current_time()
    assert await queue.get() == "soon"
    assert anyio.current_time() - start >= 0.04
    assert await queue.get() == "late"  # so "soon" kept its 0.05 s deadline, not the later 0.5 s
    assert queue.delayed == 0


async def test_put_readies_a_delayed_key_at_once() -> None:
    queue: KeyedQueue[str] = KeyedQueue()
    queue.put_after("a", 30)
    queue.put("a")
    with anyio.fail_after(1):
        assert await queue.get() == "a"
    assert queue.delayed == 0


async def test_retry_backs_off_per_key_and_forget_resets() -> None:
    queue: KeyedQueue[str] = KeyedQueue(NO_JITTER)
    assert queue.retry("a") == 0.02
    assert queue.retry("a") == 0.04
    assert queue.retry("b") == 0.02  # another key has its own streak
    assert queue.failures("a") == 2
    queue.forget("a")
    assert queue.failures("a") == 0
    assert queue.retry("a") == 0.02


async def test_a_retried_key_comes_back_after_its_delay() -> None:
    queue: KeyedQueue[str] = KeyedQueue(NO_JITTER)
    queue.put("a")
    assert await queue.get() == "a"
    queue.retry("a")
    queue.done("a")
    assert len(queue) == 0
    with anyio.fail_after(1):
        assert await queue.get() == "a"


async def test_get_waits_for_a_put() -> None:
    queue: KeyedQueue[str] = KeyedQueue()
    got: list[str] = []

    async def getter() -> None:
        got.append(await queue.get())

    async with anyio.create_task_group() as tg:
        tg.start_soon(getter)
        await anyio.wait_all_tasks_blocked()
        queue.put_after("x", 60)  # an earlier-deadline wake-up of the sleeping getter must not hand out early
        await anyio.wait_all_tasks_blocked()
        assert got == []
        queue.put("y")
    assert got == ["y"]


@pytest.mark.parametrize("delay", [0, -1])
async def test_non_positive_delay_is_a_plain_put(delay: float) -> None:
    queue: KeyedQueue[str] = KeyedQueue()
    queue.put_after("a", delay)
    assert len(queue) == 1


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 4)),
        st.tuples(st.just("get"), st.just(0)),
        st.tuples(st.just("done"), st.integers(0, 4)),
    ),
    max_size=60,
)


@given(ops=_OPS)
def test_queue_never_loses_or_doubles_a_key(ops: list[tuple[str, int]]) -> None:
    """Model check: a key put after it was last handed out is handed out again, never while processing."""

    async def run() -> None:
        queue: KeyedQueue[int] = KeyedQueue()
        processing: set[int] = set()
        owed: set[int] = set()  # keys put since they were last handed out

        async def take() -> int:
            key = await queue.get()
            assert key not in processing, "handed out while processing"
            assert key in owed, "handed out without a put"
            processing.add(key)
            owed.discard(key)
            return key

        for op, key in ops:
            if op == "put":
                queue.put(key)
                owed.add(key)
            elif op == "get" and len(queue):
                await take()
            elif op == "done" and key in processing:
                processing.discard(key)
                queue.done(key)
            assert len(queue) <= len(owed)
        # Drain: finish everything; every owed key comes out exactly once more.
        while processing or len(queue):
            for key in sorted(processing):
                processing.discard(key)
                queue.done(key)
            while len(queue):
                await take()
        assert owed == set()

    anyio.run(run)
