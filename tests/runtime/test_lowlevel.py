"""The scheduling primitives: the same semantics on asyncio (native objects) and on trio (anyio's)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import trio
import trio.lowlevel
import trio.testing

from volumed.runtime import Kind, Resource, Spec, in_memory_state
from volumed.runtime._lowlevel import YieldBudget, checkpoint, new_wakeup
from volumed.runtime.controller import ControllerContext, Input, Output, QController
from volumed.runtime.testing import assert_resource

if TYPE_CHECKING:
    from volumed.runtime.resource import Pointer

Scenario = Callable[[], Awaitable[None]]


class Number(Spec):
    value: int


SOURCE = Kind("ns", "Sources.test.volumed.dev")
TARGET = Kind("ns", "Targets.test.volumed.dev")


async def checkpoint_lets_other_tasks_run() -> None:
    ran: list[str] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: _append(ran, "other"))
        assert ran == []
        await checkpoint()
        assert ran == ["other"]


async def _append(items: list[str], item: str) -> None:
    items.append(item)


async def checkpoint_is_a_cancellation_point() -> None:
    reached = False
    with anyio.CancelScope() as scope:
        scope.cancel()
        await checkpoint()
        reached = True
    assert scope.cancelled_caught
    assert not reached


async def wakeup_wakes_its_waiter_and_is_cancellable() -> None:
    wakeup = new_wakeup()
    with anyio.move_on_after(0.01) as scope:
        await wakeup.wait()
    assert scope.cancelled_caught
    assert not wakeup.is_set()
    async with anyio.create_task_group() as tg:
        tg.start_soon(wakeup.wait)
        await anyio.wait_all_tasks_blocked()
        wakeup.set()  # the task group can only end because the waiter returned
    assert wakeup.is_set()


async def in_memory_writes_yield_once_every_32() -> None:
    ticks: list[int] = []

    async def ticker() -> None:
        while True:
            ticks.append(1)
            await checkpoint()

    state = in_memory_state()
    yielded_at: list[int] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await checkpoint()  # the ticker is running
        for write in range(96):
            before = len(ticks)
            await state.create(Resource.new(SOURCE.namespace, SOURCE.type, f"w{write}", Number(value=write)))
            if len(ticks) != before:
                yielded_at.append(write)
        tg.cancel_scope.cancel()
    assert yielded_at == [31, 63, 95]


SCENARIOS = [checkpoint_is_a_cancellation_point, wakeup_wakes_its_waiter_and_is_cancellable]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_on_asyncio(scenario: Scenario) -> None:
    await scenario()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_on_trio(scenario: Scenario) -> None:
    trio.run(scenario)


async def test_checkpoint_lets_other_tasks_run_on_asyncio() -> None:
    await checkpoint_lets_other_tasks_run()  # asyncio runs ready tasks in FIFO order: one yield is enough


async def test_in_memory_writes_yield_once_every_32_on_asyncio() -> None:
    await in_memory_writes_yield_once_every_32()


def test_checkpoint_is_a_schedule_point_on_trio() -> None:
    # trio shuffles the runnable tasks, so "the other task ran" is not deterministic; trio's own test helper
    # tells whether a block passed a schedule point.
    async def main() -> None:
        with trio.testing.assert_checkpoints():
            await checkpoint()

    trio.run(main)


def test_budget_is_due_once_every_n_calls() -> None:
    budget = YieldBudget(4)
    assert [budget.spend() for _ in range(12)] == [False, False, False, True] * 3


def test_budget_needs_a_positive_size() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        YieldBudget(0)


class Doubler(QController):
    name = "Doubler"
    inputs = (Input(SOURCE.namespace, SOURCE.type),)
    outputs = (Output(TARGET.type, namespace=TARGET.namespace),)

    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        src = await ctx.find(pointer, Number)
        if src is not None:
            doubled = Number(value=src.spec.value * 2)
            await ctx.apply(Resource.new(TARGET.namespace, TARGET.type, src.id, doubled))


def test_the_runtime_runs_on_trio_too() -> None:
    """The fallback paths (anyio's own primitives) carry a whole runtime: queue, watches, budgeted writes."""
    from volumed.runtime import Runtime

    async def main() -> None:
        state = in_memory_state()
        runtime = Runtime(state)
        runtime.register(Doubler())
        async with runtime:
            for i in range(100):  # several yield budgets' worth
                await state.create(Resource.new(SOURCE.namespace, SOURCE.type, f"s{i:03d}", Number(value=i)))
            for i in (0, 57, 99):
                target = TARGET.pointer(f"s{i:03d}")
                await assert_resource(state, target, lambda r, i=i: r.spec.value == 2 * i)

    trio.run(main)


async def test_trio_in_guest_mode_on_an_asyncio_loop_gets_trio_primitives() -> None:
    """An asyncio loop runs in the thread, but trio's guest tasks are not asyncio tasks."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    async def trio_main() -> str:
        await checkpoint()
        wakeup = new_wakeup()
        wakeup.set()
        await wakeup.wait()
        return "ok"

    trio.lowlevel.start_guest_run(
        trio_main,
        run_sync_soon_threadsafe=loop.call_soon_threadsafe,
        done_callback=done.set_result,
    )
    outcome = await done
    assert outcome.unwrap() == "ok"
