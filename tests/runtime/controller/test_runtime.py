"""The whole-controller runtime: derivation, cleanup, coalescing, requeue, backoff and its reset."""

from __future__ import annotations

import io

import anyio
import pytest
import structlog

from volumed.runtime import Pointer, in_memory_state
from volumed.runtime.controller import (
    BackoffPolicy,
    Controller,
    ControllerContext,
    Input,
    Output,
    QController,
    RequeueError,
    Runtime,
)
from volumed.runtime.testing import assert_no_resource, assert_resource, run_runtime

from ._support import DERIVED, NS, SOURCES, Deriver, Value, derived_ptr, source


async def test_outputs_follow_inputs_and_untouched_outputs_are_cleaned_up() -> None:
    deriver = Deriver()
    async with run_runtime(deriver) as rt:
        state = rt.state
        await state.create(source("a", 1))
        await state.create(source("b", 2))
        b = await assert_resource(state, derived_ptr("b"), lambda r: r.spec.value == 4)
        assert b.metadata.owner == "Deriver"  # owner stamped by the context
        await assert_resource(state, derived_ptr("a"), lambda r: r.spec.value == 2)

        await state.destroy(SOURCES.pointer("a"))
        await assert_no_resource(state, derived_ptr("a"))
        await assert_resource(state, derived_ptr("b"))  # untouched by the cleanup: still derived

        current = await state.get(SOURCES.pointer("b"))
        await state.update(current.with_spec(Value(value=5)))
        await assert_resource(state, derived_ptr("b"), lambda r: r.spec.value == 10)
    assert deriver.runs >= 3


class Blocking(Controller):
    name = "Blocking"
    inputs = (Input(NS, SOURCES.type),)

    def __init__(self) -> None:
        self.runs = 0
        self.entered = anyio.Event()
        self.release = anyio.Event()
        self.done_second = anyio.Event()

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.runs += 1
        await ctx.list(SOURCES)
        if self.runs == 1:
            self.entered.set()
            await self.release.wait()
        elif self.runs == 2:
            self.done_second.set()


async def test_changes_while_busy_coalesce_into_exactly_one_more_reconcile() -> None:
    ctl = Blocking()
    async with run_runtime(ctl) as rt:
        await ctl.entered.wait()  # the initial reconcile is running (and blocked)
        for index in range(50):
            await rt.state.create(source(f"s{index}"))
        await anyio.wait_all_tasks_blocked()  # every event has been dispatched
        assert rt.stats()["Blocking"].wakeups == 50
        assert rt.stats()["Blocking"].queue_length == 1  # one pending wake-up, however many changes
        ctl.release.set()
        await ctl.done_second.wait()
        await anyio.wait_all_tasks_blocked()
        assert ctl.runs == 2
        assert rt.stats()["Blocking"].reconciles == 2


class Requeuer(Controller):
    name = "Requeuer"

    def __init__(self) -> None:
        self.runs = 0
        self.third = anyio.Event()

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.runs += 1
        if self.runs < 3:
            ctx.requeue_after(0.01)
        else:
            self.third.set()


async def test_requeue_after_reconciles_again_without_input_changes() -> None:
    ctl = Requeuer()
    async with run_runtime(ctl):
        with anyio.fail_after(5):
            await ctl.third.wait()
        await anyio.sleep(0.05)  # no further requeue was asked for: nothing more happens
        assert ctl.runs == 3


class Flaky(Controller):
    """Fails while ``failures_left`` > 0; each failure is recorded."""

    name = "Flaky"
    inputs = (Input(NS, SOURCES.type),)

    def __init__(self, failures: int) -> None:
        self.failures_left = failures
        self.successes = 0
        self.succeeded = anyio.Event()

    async def reconcile(self, ctx: ControllerContext) -> None:
        await ctx.list(SOURCES)
        if self.failures_left > 0:
            self.failures_left -= 1
            raise RuntimeError("transient")
        self.successes += 1
        self.succeeded.set()


async def test_failures_back_off_and_a_success_resets_the_backoff() -> None:
    ctl = Flaky(failures=3)
    policy = BackoffPolicy(initial=0.01, multiplier=2.0, jitter=0.0, maximum=1.0)
    with structlog.testing.capture_logs() as logs:
        async with run_runtime(ctl, backoff=policy) as rt:
            with anyio.fail_after(5):
                await ctl.succeeded.wait()
            stats = rt.stats()["Flaky"]
            assert (stats.errors, stats.failure_streak, stats.reconciles) == (3, 0, 4)

            ctl.failures_left = 2  # a new streak after the success ...
            ctl.succeeded = anyio.Event()
            await rt.state.create(source("wake"))
            with anyio.fail_after(5):
                await ctl.succeeded.wait()
    delays = [entry["retry_in"] for entry in logs if entry["event"] == "reconcile failed"]
    assert delays == [0.01, 0.02, 0.04, 0.01, 0.02]  # ... starts again at the initial delay
    failed = next(entry for entry in logs if entry["event"] == "reconcile failed")
    assert failed["controller"] == "Flaky"  # the logger has the controller name bound
    assert failed["log_level"] == "warning"


class RequeueRaiser(Controller):
    name = "RequeueRaiser"

    def __init__(self) -> None:
        self.runs = 0
        self.done = anyio.Event()

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.runs += 1
        if self.runs == 1:
            raise RequeueError("device not there yet", 0.01)
        self.done.set()


async def test_requeue_error_retries_after_its_interval() -> None:
    ctl = RequeueRaiser()
    with structlog.testing.capture_logs() as logs:
        async with run_runtime(ctl, backoff=BackoffPolicy(initial=30, maximum=60)) as rt:
            with anyio.fail_after(5):  # far less than the 30 s backoff: the interval was used
                await ctl.done.wait()
            assert rt.stats()["RequeueRaiser"].errors == 1
            assert rt.stats()["RequeueRaiser"].failure_streak == 0
    assert [e["retry_in"] for e in logs if e["event"] == "reconcile asked to requeue"] == [0.01]


class AlwaysFails(Controller):
    name = "AlwaysFails"
    inputs = (Input(NS, SOURCES.type),)

    async def reconcile(self, ctx: ControllerContext) -> None:
        raise ValueError("broken forever")


async def test_a_failing_controller_does_not_stop_the_others() -> None:
    with structlog.testing.capture_logs():
        async with run_runtime(AlwaysFails(), Deriver()) as rt:
            await rt.state.create(source("x", 3))
            await assert_resource(rt.state, derived_ptr("x"), lambda r: r.spec.value == 6)
            assert rt.stats()["AlwaysFails"].errors >= 1
            assert rt.running


async def test_a_controller_registered_while_running_starts_at_once() -> None:
    state = in_memory_state()
    await state.create(source("early", 1))
    runtime = Runtime(state)
    async with runtime:
        runtime.register(Deriver())
        await assert_resource(state, derived_ptr("early"))
        await state.create(source("late", 2))
        await assert_resource(state, derived_ptr("late"), lambda r: r.spec.value == 4)


class Writer(Controller):
    name = "Writer"
    outputs = (Output(DERIVED.type),)

    def __init__(self) -> None:
        self.done = anyio.Event()

    async def reconcile(self, ctx: ControllerContext) -> None:
        await ctx.apply(source("ignored").with_spec(Value(value=1)).with_metadata(type=DERIVED.type))
        await ctx.find(DERIVED.pointer("nothing"))
        self.done.set()


async def test_counters() -> None:
    ctl = Writer()
    async with run_runtime(ctl) as rt:
        await ctl.done.wait()
        await anyio.wait_all_tasks_blocked()
        stats = rt.stats()["Writer"]
    assert stats.name == "Writer"
    assert stats.reconciles == 1
    assert stats.writes == 1
    assert stats.reads == 1
    assert stats.errors == 0
    assert stats.queue_length == 0


class LeakyLocals(Controller):
    """Fails with a secret in a local variable: the log must show the traceback but never the locals."""

    name = "LeakyLocals"

    def __init__(self) -> None:
        self.failed = anyio.Event()

    async def reconcile(self, ctx: ControllerContext) -> None:
        passphrase = "hunter2-very-secret"  # a local, as a key-handling controller would have
        self.failed.set()
        raise RuntimeError(f"unlock failed ({len(passphrase)} chars)")


async def test_failure_logs_carry_the_traceback_without_frame_locals() -> None:
    ctl = LeakyLocals()
    output = io.StringIO()
    structlog.configure(
        processors=[structlog.dev.ConsoleRenderer(colors=False)],
        logger_factory=structlog.PrintLoggerFactory(output),
    )
    try:
        async with run_runtime(ctl):
            await ctl.failed.wait()
            await anyio.wait_all_tasks_blocked()
    finally:
        structlog.reset_defaults()
    text = output.getvalue()
    assert "reconcile failed" in text
    assert "controller=LeakyLocals" in text
    assert "Traceback (most recent call last)" in text
    assert "unlock failed (19 chars)" in text
    assert "hunter2" not in text


async def test_quiet_failures_keep_the_first_failures_of_a_streak_at_debug_level() -> None:
    ctl = Flaky(failures=3)
    runtime = Runtime(
        in_memory_state(), backoff=BackoffPolicy(initial=0.01, jitter=0.0, maximum=0.05), quiet_failures=2
    )
    runtime.register(ctl)
    with structlog.testing.capture_logs() as logs:
        async with runtime:
            with anyio.fail_after(5):
                await ctl.succeeded.wait()
    levels = [(e["failures"], e["log_level"]) for e in logs if e["event"] == "reconcile failed"]
    assert levels == [(1, "debug"), (2, "debug"), (3, "warning")]
    assert runtime.stats()["Flaky"].errors == 3  # counted whatever the level


class BootWaiter(Controller):
    """Asks to be requeued three times (a device not there yet), then fails twice, then succeeds."""

    name = "BootWaiter"

    def __init__(self) -> None:
        self.runs = 0
        self.done = anyio.Event()

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.runs += 1
        if self.runs <= 3:
            raise RequeueError("device /dev/sdb not there yet", 0.01)
        if self.runs <= 5:
            raise RuntimeError("still settling")
        self.done.set()


async def test_quiet_failures_cover_requeue_errors_too() -> None:
    """RequeueError is the boot-time "not there yet" failure, yet it was always logged as a warning."""
    ctl = BootWaiter()
    runtime = Runtime(
        in_memory_state(), backoff=BackoffPolicy(initial=0.01, jitter=0.0, maximum=0.05), quiet_failures=4
    )
    runtime.register(ctl)
    with structlog.testing.capture_logs() as logs:
        async with runtime:
            with anyio.fail_after(5):
                await ctl.done.wait()
    failures = {"reconcile asked to requeue", "reconcile failed"}
    levels = [(e["failures"], e["log_level"]) for e in logs if e["event"] in failures]
    assert levels == [(1, "debug"), (2, "debug"), (3, "debug"), (4, "debug"), (5, "warning")]


class KeyBootWaiter(QController):
    """Per key: asks to be requeued three times, then succeeds."""

    name = "KeyBootWaiter"
    inputs = (Input(NS, SOURCES.type),)

    def __init__(self) -> None:
        self.runs = 0
        self.done = anyio.Event()

    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        self.runs += 1
        if self.runs <= 3:
            raise RequeueError("device /dev/sdb not there yet", 0.01)
        self.done.set()


async def test_quiet_failures_cover_requeue_errors_of_queue_controllers() -> None:
    ctl = KeyBootWaiter()
    runtime = Runtime(in_memory_state(), backoff=BackoffPolicy(initial=30, maximum=60), quiet_failures=2)
    runtime.register(ctl)
    with structlog.testing.capture_logs() as logs:
        async with runtime:
            await runtime.state.create(source("a", 1))
            with anyio.fail_after(5):  # far less than the 30 s backoff: the requeue interval was used
                await ctl.done.wait()
    levels = [(e["failures"], e["log_level"]) for e in logs if e["event"] == "reconcile asked to requeue"]
    assert levels == [(1, "debug"), (2, "debug"), (3, "warning")]


def test_quiet_failures_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="quiet_failures"):
        Runtime(in_memory_state(), quiet_failures=-1)


class Counting(Controller):
    inputs = (Input(NS, SOURCES.type),)

    def __init__(self, name: str) -> None:
        self.name = name
        self.runs = 0

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.runs += 1


async def test_a_failed_listen_leaves_no_dead_feed_nor_half_registration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = in_memory_state()
    real_listen = state.listen
    failures = [RuntimeError("backend hiccup")]

    def flaky_listen(*args: object, **kwargs: object) -> object:
        if failures:
            raise failures.pop()
        return real_listen(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(state, "listen", flaky_listen)
    async with Runtime(state) as rt:
        with pytest.raises(RuntimeError, match="hiccup"):
            rt.register(Counting("first"))
        second = Counting("second")
        rt.register(second)  # listening works now: the kind must get a live feed
        await anyio.wait_all_tasks_blocked()
        before = second.runs
        await state.create(source("a"))
        await anyio.wait_all_tasks_blocked()
        assert second.runs == before + 1
        assert rt.controllers == ["second"]
        first = Counting("first")
        rt.register(first)  # the failed registration left nothing behind
        await anyio.wait_all_tasks_blocked()
        assert first.runs == 1
