"""The runtime starts and stops cleanly under anyio cancellation: no task and no watch outlives it."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from volumed.runtime import in_memory_state
from volumed.runtime.controller import Controller, ControllerContext, Runtime

from ._support import Deriver, Strong
from .test_qcontroller import PerSource


def _runtime_tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t.get_name().startswith("volumed.runtime")}


class Stuck(Controller):
    """A reconcile that never returns by itself: stopping must cancel it."""

    name = "Stuck"

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.cancelled = False

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.entered.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise


async def test_context_manager_stops_every_task() -> None:
    before = set(asyncio.all_tasks())
    stuck = Stuck()
    runtime = Runtime(in_memory_state())
    for controller in (PerSource(concurrency=3), Strong(), stuck):
        runtime.register(controller)
    async with runtime:
        await stuck.entered.wait()
        assert runtime.running
        assert len(_runtime_tasks()) >= 6  # controllers, workers and watch feeds
    assert not runtime.running
    assert stuck.cancelled  # cancellation reached the reconcile; it was not retried
    assert _runtime_tasks() == set()
    assert set(asyncio.all_tasks()) == before


async def test_cancelling_run_from_outside_stops_it() -> None:
    runtime = Runtime(in_memory_state())
    runtime.register(Deriver())
    async with anyio.create_task_group() as tg:
        await tg.start(runtime.run)
        assert runtime.running
        tg.cancel_scope.cancel()
    assert not runtime.running
    assert _runtime_tasks() == set()


async def test_the_runtime_can_run_again_after_a_stop() -> None:
    runtime = Runtime(in_memory_state())
    runtime.register(Deriver())
    for _ in range(2):
        async with runtime:
            assert runtime.running
    assert _runtime_tasks() == set()


async def test_running_twice_at_once_is_refused() -> None:
    runtime = Runtime(in_memory_state())
    async with runtime:
        with pytest.raises(RuntimeError, match="already running"):
            await runtime.run()


async def test_an_error_in_the_body_propagates_and_still_stops() -> None:
    runtime = Runtime(in_memory_state())
    runtime.register(Deriver())
    with pytest.raises(KeyError):
        async with runtime:
            raise KeyError("boom")
    assert _runtime_tasks() == set()


def test_graph_export_from_the_runtime() -> None:
    runtime = Runtime(in_memory_state())
    runtime.register(Deriver())
    runtime.register(Strong())
    mermaid = runtime.graph().to_mermaid()
    assert mermaid.splitlines()[:3] == ["flowchart LR", '  c0["Deriver"]', '  c1["Strong"]']
    assert '  t0 ==>|"strong"| c1' in mermaid  # Deriveds (t0) held strongly by Strong
    dot = runtime.graph().to_dot()
    assert 'c0 -> t0 [label="exclusive", style=bold];' in dot
