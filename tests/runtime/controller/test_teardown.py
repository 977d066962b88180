"""Teardown with finalizers: strong inputs hold their input, destroy-ready inputs wake the owner."""

from __future__ import annotations

import anyio
import structlog

from volumed.runtime import Phase
from volumed.runtime.controller import Controller, ControllerContext, Input, InputKind
from volumed.runtime.testing import assert_no_resource, assert_resource, run_runtime

from ._support import DERIVED, EXTRA, NS, SOURCES, Deriver, Strong, derived_ptr, source


class DestroyReady(Controller):
    """Records the derived resources that are ready to be destroyed each time it is woken."""

    name = "DestroyReady"
    inputs = (Input(NS, DERIVED.type, kind=InputKind.DESTROY_READY),)

    def __init__(self) -> None:
        self.ready: list[list[str]] = []

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.ready.append(
            [
                r.id
                for r in await ctx.list(DERIVED)
                if r.metadata.phase is Phase.TEARING_DOWN and not r.metadata.finalizers
            ]
        )


async def test_strong_input_holds_teardown_until_its_finalizer_is_removed() -> None:
    strong = Strong()
    ready = DestroyReady()
    async with run_runtime(Deriver(), strong, ready) as rt:
        state = rt.state
        await state.create(source("s", 1))
        await assert_resource(state, derived_ptr("s"), lambda r: r.metadata.finalizers == ("Strong",))
        await assert_resource(state, EXTRA.pointer("s"), lambda r: r.metadata.owner == "Strong")
        await anyio.wait_all_tasks_blocked()
        assert rt.stats()["DestroyReady"].wakeups == 0  # creating and finalizing are not "destroy ready"

        # The source goes away: the owner tears its output down, but the finalizer holds it.
        await state.destroy(SOURCES.pointer("s"))
        await assert_resource(state, derived_ptr("s"), lambda r: r.metadata.phase is Phase.TEARING_DOWN)
        await anyio.wait_all_tasks_blocked()
        assert (await state.get(derived_ptr("s"))).metadata.finalizers == ("Strong",)
        assert rt.stats()["DestroyReady"].wakeups == 0

        # The strong holder cleans up and releases: the owner is woken and destroys.
        strong.hold = False
        await state.create(source("t", 2))  # any change of its input wakes Strong
        await assert_no_resource(state, EXTRA.pointer("s"))
        await assert_no_resource(state, derived_ptr("s"))
        await assert_resource(state, derived_ptr("t"))
        await anyio.wait_all_tasks_blocked()
    assert rt.stats()["DestroyReady"].wakeups >= 1
    assert ["s"] in ready.ready


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
