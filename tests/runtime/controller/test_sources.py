"""Event sources: a controller woken from outside the state, coalesced, restarted on failure, stopped."""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel
import pytest
import structlog

from volumed.runtime import Pointer, in_memory_state
from volumed.runtime.controller import (
    Controller,
    ControllerContext,
    EventSource,
    QController,
    RegistrationError,
    Runtime,
    Wake,
)
from volumed.runtime.testing import FAST_BACKOFF

from ._support import SOURCES


class Counting(Controller):
    """Counts its reconciles; each one may wait for ``release`` (to be busy while wake-ups arrive)."""

    name = "Counting"

    def __init__(self, *sources: EventSource) -> None:
        self.sources = sources
        self.runs = 0
        self.ran = anyio.Event()
        self.release: anyio.Event | None = None

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.runs += 1
        self.ran.set()
        if self.release is not None:
            await self.release.wait()

    async def reconciled(self, runs: int) -> None:
        with anyio.fail_after(5):
            while self.runs < runs:
                self.ran = anyio.Event()
                await self.ran.wait()


async def test_a_source_wakes_its_controller() -> None:
    trigger = anyio.Event()

    async def watch(wake: Wake) -> None:
        await trigger.wait()
        wake()
        await anyio.sleep_forever()

    controller = Counting(EventSource("trigger", watch))
    runtime = Runtime(in_memory_state(), backoff=FAST_BACKOFF)
    runtime.register(controller)
    async with runtime:
        await controller.reconciled(1)  # the first reconcile, at start
        await anyio.wait_all_tasks_blocked()
        assert controller.runs == 1  # nothing else woke it
        trigger.set()
        await controller.reconciled(2)
        assert runtime.stats()["Counting"].wakeups == 1


async def test_wake_ups_while_busy_give_one_more_reconcile() -> None:
    busy = anyio.Event()
    done = anyio.Event()

    async def burst(wake: Wake) -> None:
        await busy.wait()
        for _ in range(10):
            wake()
        done.set()
        await anyio.sleep_forever()

    controller = Counting(EventSource("burst", burst))
    controller.release = anyio.Event()
    runtime = Runtime(in_memory_state(), backoff=FAST_BACKOFF)
    runtime.register(controller)
    async with runtime:
        await controller.reconciled(1)
        busy.set()
        await done.wait()
        controller.release.set()
        await controller.reconciled(2)
        await anyio.wait_all_tasks_blocked()
        assert controller.runs == 2  # ten wake-ups while busy: exactly one more reconcile
        assert runtime.stats()["Counting"].wakeups == 10


async def test_a_failing_source_is_restarted_and_the_runtime_goes_on() -> None:
    runs = 0
    watching = anyio.Event()

    async def flaky(wake: Wake) -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise OSError(f"watch setup failed ({runs})")
        wake()
        watching.set()
        await anyio.sleep_forever()

    controller = Counting(EventSource("flaky", flaky))
    runtime = Runtime(in_memory_state(), backoff=FAST_BACKOFF)
    runtime.register(controller)
    with structlog.testing.capture_logs() as logs:
        async with runtime:
            with anyio.fail_after(5):
                await watching.wait()
            await controller.reconciled(2)  # woken by the restarted source
            await anyio.wait_all_tasks_blocked()
            assert runtime.running
    failures = [entry for entry in logs if entry["event"] == "event source failed"]
    assert [(f["source"], f["failures"], f["error"]) for f in failures] == [
        ("flaky", 1, "OSError: watch setup failed (1)"),
        ("flaky", 2, "OSError: watch setup failed (2)"),
    ]
    assert all(f["log_level"] == "warning" and f["controller"] == "Counting" for f in failures)
    assert runs == 3  # the third run watches: not restarted again


async def test_a_source_that_returns_has_ended_and_is_not_restarted() -> None:
    runs = 0

    async def unsupported(wake: Wake) -> None:
        nonlocal runs
        runs += 1

    controller = Counting(EventSource("unsupported", unsupported))
    runtime = Runtime(in_memory_state(), backoff=FAST_BACKOFF)
    runtime.register(controller)
    with structlog.testing.capture_logs() as logs:
        async with runtime:
            await controller.reconciled(1)
            await anyio.wait_all_tasks_blocked()
    assert runs == 1
    assert [e["source"] for e in logs if e["event"] == "event source ended"] == ["unsupported"]


async def test_stopping_the_runtime_cancels_its_sources() -> None:
    watching = anyio.Event()
    cancelled = False

    async def forever(wake: Wake) -> None:
        nonlocal cancelled
        watching.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled = True
            raise

    controller = Counting(EventSource("forever", forever))
    runtime = Runtime(in_memory_state(), backoff=FAST_BACKOFF)
    runtime.register(controller)
    async with runtime:
        await watching.wait()
        names = {task.get_name() for task in asyncio.all_tasks()}
        assert "volumed.runtime controller Counting source forever" in names
    assert cancelled
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("volumed.runtime")]


async def test_a_source_registered_with_a_running_runtime_starts() -> None:
    trigger = anyio.Event()

    async def watch(wake: Wake) -> None:
        await trigger.wait()
        wake()
        await anyio.sleep_forever()

    controller = Counting(EventSource("late", watch))
    async with Runtime(in_memory_state(), backoff=FAST_BACKOFF) as runtime:
        runtime.register(controller)
        await controller.reconciled(1)
        trigger.set()
        await controller.reconciled(2)


class Keyed(QController):
    """Records the keys it reconciles."""

    name = "Keyed"

    def __init__(self, *sources: EventSource) -> None:
        self.sources = sources
        self.keys: list[Pointer] = []
        self.ran = anyio.Event()

    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        self.keys.append(pointer)
        self.ran.set()


async def test_a_queue_controllers_source_names_the_keys() -> None:
    attempts = 0

    async def keys(wake: Wake) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            wake()  # no key: a QController cannot tell what to reconcile
        wake(SOURCES.pointer("a"), SOURCES.pointer("b"), SOURCES.pointer("a"))
        await anyio.sleep_forever()

    controller = Keyed(EventSource("keys", keys))
    runtime = Runtime(in_memory_state(), backoff=FAST_BACKOFF)
    runtime.register(controller)
    with structlog.testing.capture_logs() as logs:
        async with runtime:
            with anyio.fail_after(5):
                while len(controller.keys) < 2:
                    controller.ran = anyio.Event()
                    await controller.ran.wait()
            await anyio.wait_all_tasks_blocked()
    assert controller.keys == [SOURCES.pointer("a"), SOURCES.pointer("b")]  # deduplicated
    (failure,) = [e for e in logs if e["event"] == "event source failed"]
    assert "must name the keys to reconcile" in failure["error"]
    assert attempts == 2


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        (("not a source",), "sources must be EventSource values"),
        ((EventSource("", lambda wake: anyio.lowlevel.checkpoint()),), "unique non-empty"),
        (
            (
                EventSource("twice", lambda wake: anyio.lowlevel.checkpoint()),
                EventSource("twice", lambda wake: anyio.lowlevel.checkpoint()),
            ),
            "unique non-empty",
        ),
    ],
)
def test_malformed_sources_are_refused_at_registration(sources: tuple[object, ...], message: str) -> None:
    controller = Counting()
    controller.sources = sources  # type: ignore[assignment]
    with pytest.raises(RegistrationError, match=message):
        Runtime(in_memory_state()).register(controller)


async def test_a_source_that_watches_at_once_joins_the_first_reconcile() -> None:
    async def at_once(wake: Wake) -> None:
        wake()  # watching without having suspended (a socket bound, an inotify watch added)
        await anyio.sleep_forever()

    controller = Counting(EventSource("at once", at_once))
    runtime = Runtime(in_memory_state(), backoff=FAST_BACKOFF)
    runtime.register(controller)
    async with runtime:
        await controller.reconciled(1)
        await anyio.wait_all_tasks_blocked()
        assert controller.runs == 1  # not a second scan at every start
        assert runtime.stats()["Counting"].wakeups == 1
