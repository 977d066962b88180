"""The runtime conformance suite: a `Runtime` over the backend under test runs chains, failing, requeuing and
queue controllers and tears down through finalizers, and leaves nothing running when it stops.

Subclass `RuntimeConformance` in a test module (the subclass's name must start with ``Test``) and define
``open_backend(setup)``, as for the state suite.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import structlog

from volumed.runtime.controller import BackoffPolicy, Runtime
from volumed.runtime.resource import Phase

from .._assertions import DEFAULT_TIMEOUT, assert_no_resource, assert_resource
from .._harness import FAST_BACKOFF, run_runtime
from ._backend import BackendSuite, asyncio_tests
from ._controllers import (
    AlwaysFails,
    Double,
    Flaky,
    Holder,
    Increment,
    PerSource,
    Requeuer,
    RequeueRaiser,
    Stuck,
    Total,
)
from ._specs import DOUBLED, HELD, INCREMENTED, SETTINGS, SOURCES, TOTALS, Value, value

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from volumed.runtime.controller import Controller, QController
    from volumed.runtime.resource import Pointer, Resource
    from volumed.runtime.state import State


@contextlib.asynccontextmanager
async def running(
    state: State, *controllers: Controller | QController, backoff: BackoffPolicy = FAST_BACKOFF
) -> AsyncIterator[Runtime]:
    """`run_runtime` over ``state``, then a check that every task the runtime started has ended."""
    async with run_runtime(*controllers, state=state, backoff=backoff) as runtime:
        yield runtime
    assert not runtime.running
    leaked = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("volumed.runtime")]
    assert not leaked, f"tasks still alive after the runtime stopped: {leaked}"


async def set_value(state: State, pointer: Pointer, number: int) -> None:
    """Replace the value of a resource the test created."""
    current = await state.get(pointer)
    await state.update(current.with_spec(Value(value=number)))


@asyncio_tests
class RuntimeConformance(BackendSuite):
    """The controller runtime's guarantees over the backend ``open_backend`` gives (module docstring)."""

    within: ClassVar[float] = DEFAULT_TIMEOUT
    """Seconds each wait for the runtime to converge may take (a passing wait returns at once)."""

    async def converged(
        self, state: State, pointer: Pointer, predicate: Callable[[Resource[Any]], object] | None = None
    ) -> Resource[Any]:
        """`assert_resource` with the suite's ``within``."""
        return await assert_resource(state, pointer, predicate, within=self.within)

    async def gone(self, state: State, pointer: Pointer) -> None:
        """`assert_no_resource` with the suite's ``within``."""
        await assert_no_resource(state, pointer, within=self.within)

    async def test_a_chain_of_controllers_converges_and_follows_changes(self, state: State) -> None:
        async with running(state, Double(), Increment(), Total()) as runtime:
            for id_, number in (("a", 1), ("b", 2), ("c", 3)):
                await state.create(value(SOURCES, id_, number))
            total = TOTALS.pointer("all")
            await self.converged(state, total, lambda r: r.spec.value == 3 + 5 + 7)
            incremented = await state.get(INCREMENTED.pointer("b"))
            assert (incremented.spec.value, incremented.metadata.owner) == (5, "Increment")

            await set_value(state, SOURCES.pointer("b"), 10)
            await self.converged(state, total, lambda r: r.spec.value == 3 + 21 + 7)

            # A source that goes: its derived resources are cleaned up down the chain.
            await state.destroy(SOURCES.pointer("a"))
            await self.gone(state, DOUBLED.pointer("a"))
            await self.gone(state, INCREMENTED.pointer("a"))
            await self.converged(state, total, lambda r: r.spec.value == 21 + 7)
            stats = runtime.stats()
            assert [stats[name].errors for name in ("Double", "Increment", "Total")] == [0, 0, 0]

    async def test_a_failing_controller_is_retried_with_backoff_until_it_succeeds(self, state: State) -> None:
        policy = BackoffPolicy(initial=0.01, multiplier=2.0, jitter=0.0, maximum=1.0)
        await state.create(value(SOURCES, "s", 4))
        with structlog.testing.capture_logs() as logs:
            async with running(state, Flaky(failures=3), backoff=policy) as runtime:
                await self.converged(state, DOUBLED.pointer("s"), lambda r: r.spec.value == 8)
                stats = runtime.stats()["Flaky"]
                assert (stats.errors, stats.failure_streak) == (3, 0)
                assert stats.reconciles >= 4
        delays = [entry["retry_in"] for entry in logs if entry["event"] == "reconcile failed"]
        assert delays == [0.01, 0.02, 0.04]

    async def test_a_failing_controller_does_not_stop_the_others(self, state: State) -> None:
        with structlog.testing.capture_logs():
            async with running(state, AlwaysFails(), Double()) as runtime:
                await state.create(value(SOURCES, "x", 3))
                await self.converged(state, DOUBLED.pointer("x"), lambda r: r.spec.value == 6)
                assert runtime.stats()["AlwaysFails"].errors >= 1
                assert runtime.running

    async def test_a_requeue_error_retries_after_its_interval_not_the_backoff(self, state: State) -> None:
        controller = RequeueRaiser(interval=0.01)
        with structlog.testing.capture_logs():
            # A backoff longer than any wait: only the requeue interval can bring the retry within it.
            backoff = BackoffPolicy(initial=6 * self.within, maximum=12 * self.within)
            async with running(state, controller, backoff=backoff) as runtime:
                await self.converged(state, TOTALS.pointer("requeued"), lambda r: r.spec.value == 2)
                stats = runtime.stats()["RequeueRaiser"]
                assert (stats.errors, stats.failure_streak) == (1, 0)

    async def test_requeue_after_reconciles_again_without_input_changes(self, state: State) -> None:
        controller = Requeuer()
        async with running(state, controller) as runtime:
            await self.converged(state, TOTALS.pointer("runs"), lambda r: r.spec.value == 3)
            assert runtime.stats()["Requeuer"].errors == 0

    async def test_a_queue_controller_reconciles_each_key_and_a_failing_key_alone(self, state: State) -> None:
        controller = PerSource()
        await state.create(value(SOURCES, "before", 1))  # present at start: picked up by the initial mapping
        with structlog.testing.capture_logs():
            async with running(state, controller) as runtime:
                await self.converged(state, INCREMENTED.pointer("before"), lambda r: r.spec.value == 1)
                await state.create(value(SOURCES, "bad", -1))  # this key fails and backs off on its own
                await state.create(value(SOURCES, "after", 2))
                await self.converged(state, INCREMENTED.pointer("after"), lambda r: r.spec.value == 2)
                await assert_no_resource(state, INCREMENTED.pointer("bad"), within=0.05)  # not yet
                assert runtime.stats()["PerSource"].errors >= 1

                # A secondary input mapped onto every key.
                await state.create(value(SETTINGS, "factor", 10))
                await self.converged(state, INCREMENTED.pointer("before"), lambda r: r.spec.value == 10)
                await self.converged(state, INCREMENTED.pointer("after"), lambda r: r.spec.value == 20)

                # A change of the failing key retries it; a destroyed source's output goes.
                await set_value(state, SOURCES.pointer("bad"), 3)
                await self.converged(state, INCREMENTED.pointer("bad"), lambda r: r.spec.value == 30)
                await state.destroy(SOURCES.pointer("before"))
                await self.gone(state, INCREMENTED.pointer("before"))
        assert controller.overlaps == []

    async def test_teardown_waits_for_the_finalizers_of_strong_inputs(self, state: State) -> None:
        holder = Holder()
        async with running(state, Double(), holder):
            await state.create(value(SOURCES, "s", 1))
            doubled = DOUBLED.pointer("s")
            await self.converged(state, doubled, lambda r: r.metadata.finalizers == ("Holder",))
            await self.converged(state, HELD.pointer("s"), lambda r: r.metadata.owner == "Holder")

            # The source goes: the owner tears its output down, and the finalizer holds it there.
            await state.destroy(SOURCES.pointer("s"))
            torn = await self.converged(state, doubled, lambda r: r.metadata.phase is Phase.TEARING_DOWN)
            assert torn.metadata.finalizers == ("Holder",)
            await anyio.lowlevel.checkpoint()
            assert (await state.get(doubled)).metadata.finalizers == ("Holder",)

            # The holder cleans up and releases: the owner is woken and destroys.
            holder.hold = False
            await state.create(value(SOURCES, "t", 2))  # a change of its input wakes the holder
            await self.gone(state, HELD.pointer("s"))
            await self.gone(state, doubled)
            await self.converged(state, DOUBLED.pointer("t"), lambda r: r.metadata.finalizers == ("Holder",))

    async def test_a_controller_registered_while_running_starts_at_once(self, state: State) -> None:
        await state.create(value(SOURCES, "early", 1))
        async with running(state) as runtime:
            runtime.register(Double())
            await self.converged(state, DOUBLED.pointer("early"), lambda r: r.spec.value == 2)
            await state.create(value(SOURCES, "late", 2))
            await self.converged(state, DOUBLED.pointer("late"), lambda r: r.spec.value == 4)

    async def test_stopping_cancels_a_reconcile_in_flight_and_leaves_nothing_running(
        self, state: State
    ) -> None:
        stuck = Stuck()
        async with running(state, stuck, Double()):
            await state.create(value(SOURCES, "s", 1))
            with anyio.fail_after(self.within):
                await stuck.entered.wait()
            await self.converged(state, DOUBLED.pointer("s"))
        assert stuck.cancelled
        # The runtime no longer listens: writes go on, and nothing derives from them.
        await state.create(value(SOURCES, "after-stop", 1))
        assert await state.find(DOUBLED.pointer("after-stop")) is None
