"""The controller runtime over the persistent sqlite state: same behaviour, and it resumes after a restart."""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.runtime import Phase, ResourceDefinition, ResourceRegistry, SqliteCore, WrappedState
from volumed.runtime.testing import assert_no_resource, assert_resource, run_runtime

from ._support import DERIVED, EXTRA, NS, SOURCES, Deriver, Strong, Value, derived_ptr, source

if TYPE_CHECKING:
    from pathlib import Path

REGISTRY = ResourceRegistry([ResourceDefinition(kind.type, Value, NS) for kind in (SOURCES, DERIVED, EXTRA)])


async def test_outputs_persist_and_are_cleaned_up_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    async with await SqliteCore.open(path, REGISTRY) as core:
        state = WrappedState(core)
        async with run_runtime(Deriver(), state=state):
            await state.create(source("a", 1))
            await state.create(source("b", 2))
            await assert_resource(state, derived_ptr("a"), lambda r: r.spec.value == 2)
            await assert_resource(state, derived_ptr("b"), lambda r: r.spec.value == 4)
        await state.destroy(SOURCES.pointer("a"))  # while no controller runs

    async with await SqliteCore.open(path, REGISTRY) as core:
        state = WrappedState(core)
        stale = await state.get(derived_ptr("a"))
        assert stale.metadata.owner == "Deriver"  # the owner stamp survived the restart
        async with run_runtime(Deriver(), state=state):
            await assert_no_resource(state, derived_ptr("a"))  # the first reconcile cleans it up
            await assert_resource(state, derived_ptr("b"), lambda r: r.spec.value == 4)


async def test_finalizer_protocol_on_sqlite(tmp_path: Path) -> None:
    strong = Strong()
    async with await SqliteCore.open(tmp_path / "state.db", REGISTRY) as core:
        state = WrappedState(core)
        async with run_runtime(Deriver(), strong, state=state):
            await state.create(source("s", 1))
            await assert_resource(state, derived_ptr("s"), lambda r: r.metadata.finalizers == ("Strong",))
            await assert_resource(state, EXTRA.pointer("s"))
            await state.destroy(SOURCES.pointer("s"))
            await assert_resource(state, derived_ptr("s"), lambda r: r.metadata.phase is Phase.TEARING_DOWN)
            strong.hold = False
            await state.create(source("poke", 1))
            await assert_no_resource(state, EXTRA.pointer("s"))
            await assert_no_resource(state, derived_ptr("s"))
