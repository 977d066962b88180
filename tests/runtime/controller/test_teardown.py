"""Teardown with finalizers: strong inputs hold their input, destroy-ready inputs wake the owner."""

from __future__ import annotations

from typing import Any

import anyio
import structlog

from volumed.runtime import Phase, Pointer, Resource
from volumed.runtime.controller import (
    Controller,
    ControllerContext,
    ControllerReader,
    Input,
    InputKind,
    QController,
)
from volumed.runtime.testing import assert_no_resource, assert_resource, run_runtime

from ._support import DERIVED, EXTRA, NS, SOURCES, Deriver, Strong, derived_ptr, source


class DestroyReady(Controller):
    """A whole controller with a destroy-ready input: only its wake-ups (the runtime's stats) are checked."""

    name = "DestroyReady"
    inputs = (Input(NS, DERIVED.type, kind=InputKind.DESTROY_READY),)

    async def reconcile(self, ctx: ControllerContext) -> None:
        await ctx.list(DERIVED)


class DestroyReadyKeys(QController):
    """Records every resource its destroy-ready input was woken for, as the runtime hands it over.

    A level-triggered reconcile may run after the owner has already destroyed a resource that was ready
    (that is a race it is meant to lose), so what the runtime delivered is checked here, at the mapping.
    """

    name = "DestroyReadyKeys"
    inputs = (Input(NS, DERIVED.type, kind=InputKind.DESTROY_READY),)

    def __init__(self) -> None:
        self.woken_for: list[tuple[str, Phase, tuple[str, ...]]] = []

    async def map_input(self, reader: ControllerReader, resource: Resource[Any]) -> list[Pointer]:
        md = resource.metadata
        self.woken_for.append((md.id, md.phase, md.finalizers))
        return []

    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        raise AssertionError("never queued")


async def test_strong_input_holds_teardown_until_its_finalizer_is_removed() -> None:
    strong = Strong()
    ready = DestroyReady()
    keys = DestroyReadyKeys()
    async with run_runtime(Deriver(), strong, ready, keys) as rt:
        state = rt.state
        await state.create(source("s", 1))
        await assert_resource(state, derived_ptr("s"), lambda r: r.metadata.finalizers == ("Strong",))
        await assert_resource(state, EXTRA.pointer("s"), lambda r: r.metadata.owner == "Strong")
        await anyio.wait_all_tasks_blocked()
        assert rt.stats()["DestroyReady"].wakeups == 0  # creating and finalizing are not "destroy ready"
        assert keys.woken_for == []

        # The source goes away: the owner tears its output down, but the finalizer holds it.
        await state.destroy(SOURCES.pointer("s"))
        await assert_resource(state, derived_ptr("s"), lambda r: r.metadata.phase is Phase.TEARING_DOWN)
        await anyio.wait_all_tasks_blocked()
        assert (await state.get(derived_ptr("s"))).metadata.finalizers == ("Strong",)
        assert rt.stats()["DestroyReady"].wakeups == 0
        assert keys.woken_for == []

        # The strong holder cleans up and releases: the owner is woken and destroys.
        strong.hold = False
        await state.create(source("t", 2))  # any change of its input wakes Strong
        await assert_no_resource(state, EXTRA.pointer("s"))
        await assert_no_resource(state, derived_ptr("s"))
        await assert_resource(state, derived_ptr("t"))
        await anyio.wait_all_tasks_blocked()
    assert rt.stats()["DestroyReady"].wakeups >= 1
    # One change woke it: the last finalizer went. map_input sees the value before it and the one after it.
    assert keys.woken_for == [("s", Phase.TEARING_DOWN, ("Strong",)), ("s", Phase.TEARING_DOWN, ())]


async def test_an_input_that_comes_back_during_teardown_is_recreated_after_release() -> None:
    strong = Strong()
    async with run_runtime(Deriver(), strong) as rt:
        state = rt.state
        await state.create(source("s", 1))
        await assert_resource(state, derived_ptr("s"), lambda r: r.metadata.finalizers == ("Strong",))
        await state.destroy(SOURCES.pointer("s"))
        await assert_resource(state, derived_ptr("s"), lambda r: r.metadata.phase is Phase.TEARING_DOWN)

        with structlog.testing.capture_logs() as logs:
            await state.create(source("s", 5))  # back, while its derived resource is still held
            await anyio.wait_all_tasks_blocked()
            # The owner does not resurrect a tearing-down resource: it fails (PhaseConflictError) and retries.
            assert any(e["event"] == "reconcile failed" and "PhaseConflict" in e["error"] for e in logs)
            strong.hold = False
            await state.create(source("poke"))
            await assert_resource(
                state,
                derived_ptr("s"),
                lambda r: r.metadata.phase is Phase.RUNNING and r.spec.value == 10,
            )
