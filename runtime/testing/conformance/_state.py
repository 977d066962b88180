"""The state conformance suite: every operation, error and watch behaviour of a backend (via `WrappedState`).

Subclass `StateConformance` in a test module (the subclass's name must start with ``Test``) and define
``open_backend(setup)``; pytest then runs every test below against that backend.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
import pytest
import structlog
from hypothesis import HealthCheck, given, settings

from volumed.runtime.resource import IDQuery, Kind, LabelQuery, LabelTerm, Phase, Resource
from volumed.runtime.state import (
    AlreadyExistsError,
    ConflictError,
    Event,
    EventStream,
    EventType,
    InvalidResourceError,
    NotFoundError,
    OwnerConflictError,
    PendingFinalizersError,
    PhaseConflictError,
    WrappedState,
)

from ._backend import BackendSuite, asyncio_tests
from ._specs import GADGETS, NS, WIDGETS, Gadget, Widget, widget
from ._state_model import OPERATIONS, run_operations

if TYPE_CHECKING:
    from volumed.runtime.resource import Pointer
    from volumed.runtime.state import CoreState


async def next_event(stream: EventStream) -> Event:
    with anyio.fail_after(2.0):
        return await stream.__anext__()


async def no_event(stream: EventStream, wait: float = 0.05) -> None:
    with anyio.move_on_after(wait):
        event = await stream.__anext__()
        pytest.fail(f"unexpected event {event}")


def summary(event: Event) -> tuple[str, str | None, int | None]:
    r = event.resource
    return (event.type.value, None if r is None else r.id, None if r is None else r.version)


class _RacingFind:
    """The backend under test, except that its first ``find`` lets another write slip in before returning."""

    def __init__(self, core: CoreState, race: Any) -> None:
        self._core = core
        self._race = race

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)

    async def find(self, pointer: Pointer) -> Resource[Any] | None:
        found = await self._core.find(pointer)
        race, self._race = self._race, None
        if race is not None:
            await race()
        return found


@asyncio_tests
class StateConformance(BackendSuite):
    """Every `State` behaviour on the backend ``open_backend`` gives (see the module docstring)."""

    # --- create / get ---------------------------------------------------------------------------------------

    async def test_create_stamps_version_times_owner(self, state: WrappedState) -> None:
        created = await state.create(widget("a", 1, env="x"), owner="ctrl")
        md = created.metadata
        assert (md.version, md.owner, md.phase) == (1, "ctrl", Phase.RUNNING)
        assert isinstance(md.created, datetime)
        assert md.created == md.updated
        assert md.labels == {"env": "x"}
        assert created.spec == Widget(size=1)
        assert await state.get(created.pointer) == created

    async def test_create_keeps_metadata_owner_without_option(self, state: WrappedState) -> None:
        created = await state.create(widget("a").with_metadata(owner="meta-owner"))
        assert created.metadata.owner == "meta-owner"

    async def test_create_forces_running_phase_and_keeps_finalizers(self, state: WrappedState) -> None:
        given = widget("a").with_metadata(phase=Phase.TEARING_DOWN, finalizers=("f1",), version=7)
        created = await state.create(given)
        assert created.metadata.phase is Phase.RUNNING
        assert created.metadata.finalizers == ("f1",)
        assert created.version == 1

    async def test_create_existing_raises_already_exists(self, state: WrappedState) -> None:
        await state.create(widget("a"))
        with pytest.raises(
            AlreadyExistsError, match=r"Widgets\.conformance\.volumed\.dev/a already exists"
        ) as info:
            await state.create(widget("a", 2))
        assert info.value.pointer == WIDGETS.pointer("a")
        assert (await state.get(WIDGETS.pointer("a"))).spec.size == 0

    async def test_get_missing_raises_not_found(self, state: WrappedState) -> None:
        with pytest.raises(NotFoundError, match="does not exist") as info:
            await state.get(WIDGETS.pointer("nope"))
        assert info.value.pointer == WIDGETS.pointer("nope")

    async def test_find_returns_the_resource_or_none(self, state: WrappedState) -> None:
        assert await state.find(WIDGETS.pointer("nope")) is None
        created = await state.create(widget("a", 3))
        assert await state.find(WIDGETS.pointer("a")) is created
        await state.destroy(WIDGETS.pointer("a"))
        assert await state.find(WIDGETS.pointer("a")) is None

    async def test_create_rejects_another_spec_model_for_a_type(self, state: WrappedState) -> None:
        await state.create(widget("a"))
        wrong = Resource.new(NS, WIDGETS.type, "b", Gadget(blob=b"x"))
        with pytest.raises(InvalidResourceError, match="Gadget"):
            await state.create(wrong)
        assert [r.id for r in await state.list(WIDGETS)] == ["a"]

    # --- list -----------------------------------------------------------------------------------------------

    async def test_list_sorted_by_id_and_isolated_by_kind(self, state: WrappedState) -> None:
        for rid in ["c", "a", "b"]:
            await state.create(widget(rid))
        await state.create(Resource.new(NS, GADGETS.type, "g", Gadget()))
        assert [r.id for r in await state.list(WIDGETS)] == ["a", "b", "c"]
        assert [r.id for r in await state.list(GADGETS)] == ["g"]
        assert await state.list(Kind("elsewhere", WIDGETS.type)) == []
        assert await state.list(Kind(NS, "Unknowns.conformance.volumed.dev")) == []

    async def test_list_after_destroy_and_recreate_stays_sorted(self, state: WrappedState) -> None:
        for rid in ["b", "d"]:
            await state.create(widget(rid))
        assert [r.id for r in await state.list(WIDGETS)] == ["b", "d"]
        await state.create(widget("a"))
        await state.create(widget("c"))
        await state.destroy(WIDGETS.pointer("b"))
        assert [r.id for r in await state.list(WIDGETS)] == ["a", "c", "d"]

    async def test_list_label_queries(self, state: WrappedState) -> None:
        await state.create(widget("a", env="prod", tier="db"))
        await state.create(widget("b", env="dev"))
        await state.create(widget("c", tier="web"))

        async def ids(labels: LabelQuery | None = None, id_query: IDQuery | None = None) -> list[str]:
            return [r.id for r in await state.list(WIDGETS, labels=labels, ids=id_query)]

        assert await ids(LabelQuery.equal(env="prod")) == ["a"]
        assert await ids(LabelQuery.of(LabelTerm.exists("env"))) == ["a", "b"]
        assert await ids(LabelQuery.of(LabelTerm.not_exists("env"))) == ["c"]
        assert await ids(LabelQuery.of(LabelTerm.in_("tier", ["db", "web"]))) == ["a", "c"]
        assert await ids(LabelQuery.of(LabelTerm.exists("env"), LabelTerm.exists("tier"))) == ["a"]
        assert await ids(LabelQuery()) == ["a", "b", "c"]
        assert await ids(id_query=IDQuery("^[ab]$")) == ["a", "b"]
        assert await ids(LabelQuery.of(LabelTerm.exists("tier")), IDQuery("c")) == ["c"]

    # --- update ---------------------------------------------------------------------------------------------

    async def test_update_bumps_version_and_replaces_spec_and_labels(self, state: WrappedState) -> None:
        created = await state.create(widget("a", 1), owner="o")
        changed = created.with_spec(Widget(size=2)).with_metadata(labels={"k": "v"})
        updated = await state.update(changed, owner="o")
        assert updated.version == 2
        assert updated.spec.size == 2
        assert updated.metadata.labels == {"k": "v"}
        assert updated.metadata.created == created.metadata.created
        assert updated.metadata.updated >= created.metadata.updated
        assert await state.get(created.pointer) == updated

    async def test_update_that_changes_nothing_is_a_noop(self, state: WrappedState) -> None:
        created = await state.create(widget("a", 1))
        async with state.watch(created.pointer) as events:
            assert (await next_event(events)).type is EventType.CREATED
            same = await state.update(created.with_spec(Widget(size=1)))
            assert same == created
            assert same.version == 1
            await no_event(events)

    async def test_update_stale_version_raises_conflict(self, state: WrappedState) -> None:
        created = await state.create(widget("a", 1))
        await state.update(created.with_spec(Widget(size=2)))
        with pytest.raises(ConflictError, match="based on version 1, stored 2") as info:
            await state.update(created.with_spec(Widget(size=3)))
        assert (info.value.expected, info.value.stored) == (1, 2)
        assert (await state.get(created.pointer)).spec.size == 2

    async def test_update_by_another_owner_raises_owner_conflict(self, state: WrappedState) -> None:
        created = await state.create(widget("a"), owner="alice")
        with pytest.raises(OwnerConflictError, match="owned by alice, not by bob"):
            await state.update(created.with_spec(Widget(size=5)), owner="bob")
        with pytest.raises(OwnerConflictError):
            await state.update(created.with_spec(Widget(size=5)).with_metadata(owner=""))
        assert (await state.get(created.pointer)).version == 1

    async def test_update_missing_raises_not_found(self, state: WrappedState) -> None:
        with pytest.raises(NotFoundError):
            await state.update(widget("ghost").with_metadata(version=1))

    async def test_update_ignores_state_owned_metadata(self, state: WrappedState) -> None:
        created = await state.create(widget("a"), owner="o")
        sneaky = created.with_spec(Widget(size=9)).with_metadata(phase=Phase.TEARING_DOWN, finalizers=("x",))
        updated = await state.update(sneaky, owner="o")
        assert updated.metadata.phase is Phase.RUNNING
        assert updated.metadata.finalizers == ()
        assert updated.metadata.owner == "o"

    async def test_update_rejects_another_spec_model(self, state: WrappedState) -> None:
        created = await state.create(widget("a"))
        with pytest.raises(InvalidResourceError):
            await state.update(created.with_spec(Gadget()))

    # --- teardown / phase -----------------------------------------------------------------------------------

    async def test_teardown_moves_phase_and_reports_readiness(self, state: WrappedState) -> None:
        created = await state.create(widget("a"), owner="o")
        await state.add_finalizer(created.pointer, "holder")
        assert await state.teardown(created.pointer, owner="o") is False
        torn = await state.get(created.pointer)
        assert torn.metadata.phase is Phase.TEARING_DOWN
        assert torn.version == 3
        # Tearing down twice changes nothing.
        assert await state.teardown(created.pointer, owner="o") is False
        assert (await state.get(created.pointer)).version == 3
        await state.remove_finalizer(created.pointer, "holder")
        assert await state.teardown(created.pointer, owner="o") is True

    async def test_teardown_by_another_owner_raises(self, state: WrappedState) -> None:
        created = await state.create(widget("a"), owner="o")
        with pytest.raises(OwnerConflictError):
            await state.teardown(created.pointer, owner="intruder")
        with pytest.raises(NotFoundError):
            await state.teardown(WIDGETS.pointer("ghost"))

    async def test_update_of_tearing_down_resource_raises_phase_conflict(self, state: WrappedState) -> None:
        created = await state.create(widget("a"))
        await state.teardown(created.pointer)
        current = await state.get(created.pointer)
        with pytest.raises(PhaseConflictError, match="tearingDown, the operation expects running"):
            await state.update(current.with_spec(Widget(size=4)))
        updated = await state.update(current.with_spec(Widget(size=4)), expected_phase=None)
        assert updated.metadata.phase is Phase.TEARING_DOWN
        assert updated.spec.size == 4
        torn = await state.update(updated.with_spec(Widget(size=5)), expected_phase=Phase.TEARING_DOWN)
        assert torn.version == updated.version + 1

    async def test_create_over_tearing_down_resource_raises_already_exists(self, state: WrappedState) -> None:
        created = await state.create(widget("a"))
        await state.teardown(created.pointer)
        with pytest.raises(AlreadyExistsError):
            await state.create(widget("a"))

    # --- finalizers and destroy -----------------------------------------------------------------------------

    async def test_finalizers_add_remove_dedupe(self, state: WrappedState) -> None:
        created = await state.create(widget("a"))
        r = await state.add_finalizer(created.pointer, "f1", "f2")
        assert (r.metadata.finalizers, r.version) == (("f1", "f2"), 2)
        r = await state.add_finalizer(created.pointer, "f2", "f1")
        assert (r.metadata.finalizers, r.version) == (("f1", "f2"), 2)
        r = await state.add_finalizer(created.pointer, "f3")
        assert r.metadata.finalizers == ("f1", "f2", "f3")
        r = await state.remove_finalizer(created.pointer, "f2", "absent")
        assert (r.metadata.finalizers, r.version) == (("f1", "f3"), 4)
        r = await state.remove_finalizer(created.pointer, "absent")
        assert r.version == 4
        with pytest.raises(NotFoundError):
            await state.add_finalizer(WIDGETS.pointer("ghost"), "f")
        with pytest.raises(NotFoundError):
            await state.remove_finalizer(WIDGETS.pointer("ghost"), "f")
        with pytest.raises(InvalidResourceError):
            await state.add_finalizer(created.pointer, "")

    async def test_finalizers_may_be_added_by_anyone(self, state: WrappedState) -> None:
        created = await state.create(widget("a"), owner="owner")
        r = await state.add_finalizer(created.pointer, "other-controller")
        assert r.metadata.owner == "owner"

    async def test_destroy_refused_while_finalizers_remain(self, state: WrappedState) -> None:
        created = await state.create(widget("a"), owner="o")
        await state.add_finalizer(created.pointer, "f1")
        with pytest.raises(PendingFinalizersError, match="pending finalizers: f1") as info:
            await state.destroy(created.pointer, owner="o")
        assert info.value.finalizers == ("f1",)
        await state.remove_finalizer(created.pointer, "f1")
        await state.destroy(created.pointer, owner="o")
        with pytest.raises(NotFoundError):
            await state.get(created.pointer)

    async def test_destroy_errors(self, state: WrappedState) -> None:
        created = await state.create(widget("a"), owner="o")
        with pytest.raises(OwnerConflictError):
            await state.destroy(created.pointer)
        with pytest.raises(NotFoundError):
            await state.destroy(WIDGETS.pointer("ghost"))
        await state.destroy(created.pointer, owner="o")
        again = await state.create(widget("a"))
        assert again.version == 1

    # --- derived operations ---------------------------------------------------------------------------------

    async def test_modify_creates_then_updates(self, state: WrappedState) -> None:
        def grow(r: Resource[Any]) -> Resource[Any]:
            return r.with_spec(Widget(size=r.spec.size + 1))

        first = await state.modify(widget("m", 10), grow, owner="o")
        assert (first.version, first.spec.size, first.metadata.owner) == (1, 11, "o")
        second = await state.modify(widget("m", 10), grow, owner="o")
        assert (second.version, second.spec.size) == (2, 12)
        with pytest.raises(OwnerConflictError):
            await state.modify(widget("m"), grow, owner="someone-else")

    async def test_modify_retries_on_version_conflict(self, state: WrappedState) -> None:
        await state.create(widget("m", 0))
        calls = 0

        def racing(r: Resource[Any]) -> Resource[Any]:
            nonlocal calls
            calls += 1
            return r.with_spec(Widget(size=r.spec.size + 100))

        async def bump_once() -> None:
            current = await state.get(WIDGETS.pointer("m"))
            await state.update(current.with_spec(Widget(size=current.spec.size + 1)))

        # A concurrent writer slips in between the read and the write of the first attempt.
        racing_state = WrappedState(cast("CoreState", _RacingFind(state.core, bump_once)))
        result = await racing_state.modify(widget("m"), racing)
        assert calls == 2
        assert result.spec.size == 101
        assert result.version == 3

    async def test_update_with_conflicts_retries_and_propagates_not_found(self, state: WrappedState) -> None:
        await state.create(widget("u", 1))
        attempts = 0

        def fn(r: Resource[Any]) -> Resource[Any]:
            nonlocal attempts
            attempts += 1
            return r.with_spec(Widget(size=r.spec.size * 10))

        def count(r: Resource[Any]) -> Resource[Any]:
            return r.with_metadata(labels={"n": str(int(r.metadata.labels.get("n", "0")) + 1)})

        async def concurrent() -> None:
            for _ in range(5):
                await state.update_with_conflicts(WIDGETS.pointer("u"), count)

        async with anyio.create_task_group() as tg:
            tg.start_soon(concurrent)
            tg.start_soon(concurrent)
            result = await state.update_with_conflicts(WIDGETS.pointer("u"), fn)
        final = await state.get(WIDGETS.pointer("u"))
        assert result.spec.size == 10
        assert final.spec.size == 10
        assert final.metadata.labels["n"] == "10"
        assert final.version == 12
        assert attempts >= 1
        with pytest.raises(NotFoundError):
            await state.update_with_conflicts(WIDGETS.pointer("ghost"), fn)

    async def test_update_function_must_keep_the_pointer(self, state: WrappedState) -> None:
        await state.create(widget("u"))
        with pytest.raises(TypeError, match="same pointer"):
            await state.update_with_conflicts(WIDGETS.pointer("u"), lambda r: widget("other"))

    async def test_teardown_and_destroy_waits_for_finalizers(self, state: WrappedState) -> None:
        created = await state.create(widget("t"), owner="o")
        await state.add_finalizer(created.pointer, "mounter", "syncer")
        order: list[str] = []

        async def holder(name: str, delay: float) -> None:
            async with state.watch(created.pointer) as events:
                async for event in events:
                    if event.resource is not None and event.resource.metadata.phase is Phase.TEARING_DOWN:
                        break
            await anyio.sleep(delay)
            order.append(name)
            await state.remove_finalizer(created.pointer, name)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(holder, "mounter", 0.01)
                tg.start_soon(holder, "syncer", 0.03)
                await anyio.sleep(0.005)
                await state.teardown_and_destroy(created.pointer, owner="o")
                order.append("destroyed")
        assert order == ["mounter", "syncer", "destroyed"]
        with pytest.raises(NotFoundError):
            await state.get(created.pointer)

    async def test_teardown_and_destroy_immediate_missing_and_foreign(self, state: WrappedState) -> None:
        created = await state.create(widget("t"), owner="o")
        await state.teardown_and_destroy(created.pointer, owner="o")
        assert await state.list(WIDGETS) == []
        await state.teardown_and_destroy(created.pointer, owner="o")  # already gone: quiet
        other = await state.create(widget("x"), owner="o")
        with pytest.raises(OwnerConflictError):
            await state.teardown_and_destroy(other.pointer, owner="not-o")

    # --- watches --------------------------------------------------------------------------------------------

    async def test_watch_one_resource_initial_state_then_changes(self, state: WrappedState) -> None:
        pointer = WIDGETS.pointer("w")
        async with state.watch(pointer) as events:
            first = await next_event(events)
            assert first.type is EventType.NOOP
            assert first.resource is None
            created = await state.create(widget("w", 1))
            await state.create(widget("other"))
            updated = await state.update(created.with_spec(Widget(size=2)))
            await state.destroy(pointer)
            await state.create(widget("w", 3))
            got = [await next_event(events) for _ in range(4)]
        assert [summary(e) for e in got] == [
            ("created", "w", 1),
            ("updated", "w", 2),
            ("destroyed", "w", 2),
            ("created", "w", 1),
        ]
        assert got[1].old == created
        assert got[1].resource == updated

    async def test_watch_existing_resource_starts_with_created(self, state: WrappedState) -> None:
        created = await state.create(widget("w", 1))
        async with state.watch(created.pointer) as events:
            first = await next_event(events)
        assert first.type is EventType.CREATED
        assert first.resource == created

    async def test_watch_kind_bootstrap_sorted_then_bootstrapped(self, state: WrappedState) -> None:
        for rid in ["c", "a", "b"]:
            await state.create(widget(rid))
        async with state.watch_kind(WIDGETS, bootstrap=True) as events:
            got = [await next_event(events) for _ in range(4)]
            assert [summary(e) for e in got] == [
                ("created", "a", 1),
                ("created", "b", 1),
                ("created", "c", 1),
                ("bootstrapped", None, None),
            ]
            await state.create(widget("d"))
            assert summary(await next_event(events)) == ("created", "d", 1)

    async def test_watch_kind_bootstrap_of_empty_kind(self, state: WrappedState) -> None:
        async with state.watch_kind(WIDGETS, bootstrap=True) as events:
            assert (await next_event(events)).type is EventType.BOOTSTRAPPED

    async def test_watch_kind_without_bootstrap_only_changes(self, state: WrappedState) -> None:
        existing = await state.create(widget("a"))
        async with state.watch_kind(WIDGETS) as events:
            await no_event(events)
            updated = await state.update(existing.with_spec(Widget(size=1)))
            event = await next_event(events)
        assert event.type is EventType.UPDATED
        assert (event.resource, event.old) == (updated, existing)

    async def test_listen_is_called_inside_each_write_in_commit_order(self, state: WrappedState) -> None:
        await state.create(widget("before"))  # not seen: listening starts now
        seen: list[tuple[str, str | None, int | None]] = []
        current: dict[str, int] = {}

        def listener(event: Event) -> None:
            seen.append(summary(event))
            # Called after the commit, before the write returns: the state already holds the new value.
            assert event.resource is not None
            current[event.resource.id] = event.resource.version

        stop = state.listen(WIDGETS, listener)
        r = await state.create(widget("a"))
        assert seen == [("created", "a", 1)]
        r = await state.update(r.with_spec(Widget(size=1)))
        await state.update(r.with_spec(Widget(size=1)))  # a no-op write: no event
        await state.create(Resource.new(NS, GADGETS.type, "g", Gadget(blob=b"x")))  # another kind
        await state.teardown(r.pointer)
        await state.destroy(r.pointer)
        assert seen == [("created", "a", 1), ("updated", "a", 2), ("updated", "a", 3), ("destroyed", "a", 3)]
        stop()
        await state.create(widget("after"))
        assert len(seen) == 4
        stop()  # stopping twice is harmless

    async def test_a_failing_listener_neither_fails_the_write_nor_starves_others(
        self, state: WrappedState
    ) -> None:
        seen: list[str] = []

        def broken(event: Event) -> None:
            raise RuntimeError("listener bug")

        state.listen(WIDGETS, broken)
        state.listen(WIDGETS, lambda event: seen.append(event.type.value))
        async with state.watch_kind(WIDGETS) as events:
            with structlog.testing.capture_logs() as logs:
                created = await state.create(widget("a"))
            assert created.version == 1
            assert (await state.get(WIDGETS.pointer("a"))).version == 1
            assert seen == ["created"]
            assert summary(await next_event(events)) == ("created", "a", 1)  # watchers are woken too
        failures = [e for e in logs if e["event"] == "state listener failed; the write stands"]
        assert len(failures) == 1
        assert "listener bug" in failures[0]["error"]
        assert "RuntimeError" in failures[0]["exception"]

    async def test_stopping_one_registration_keeps_another_of_the_same_listener(
        self, state: WrappedState
    ) -> None:
        seen: list[str] = []

        def listener(event: Event) -> None:
            seen.append(event.type.value)

        stop_first = state.listen(WIDGETS, listener)
        state.listen(WIDGETS, listener)
        await state.create(widget("a"))
        assert seen == ["created", "created"]
        stop_first()
        await state.create(widget("b"))
        assert seen == ["created", "created", "created"]

    async def test_watch_kind_sees_every_change_in_order(self, state: WrappedState) -> None:
        async with state.watch_kind(WIDGETS) as events:
            r = await state.create(widget("a"))
            for size in range(1, 6):
                r = await state.update(r.with_spec(Widget(size=size)))
            await state.add_finalizer(r.pointer, "f")
            await state.teardown(r.pointer)
            await state.remove_finalizer(r.pointer, "f")
            await state.destroy(r.pointer)
            got = [summary(await next_event(events)) for _ in range(10)]
        assert got == [
            ("created", "a", 1),
            *[("updated", "a", v) for v in range(2, 10)],
            ("destroyed", "a", 9),
        ]

    async def test_watch_kind_label_query_rewrites_created_and_destroyed(self, state: WrappedState) -> None:
        r = await state.create(widget("a", env="dev"))
        await state.create(widget("b", env="prod"))
        query = LabelQuery.equal(env="prod")
        async with state.watch_kind(WIDGETS, bootstrap=True, labels=query) as events:
            assert summary(await next_event(events)) == ("created", "b", 1)
            assert (await next_event(events)).type is EventType.BOOTSTRAPPED
            # "a" starts matching: CREATED, although the state saw an update.
            r = await state.update(r.with_metadata(labels={"env": "prod"}))
            flipped_in = await next_event(events)
            assert summary(flipped_in) == ("created", "a", 2)
            # Still matching: UPDATED with old.
            r2 = await state.update(r.with_spec(Widget(size=1)))
            still = await next_event(events)
            assert (still.type, still.resource, still.old) == (EventType.UPDATED, r2, r)
            # Stops matching: DESTROYED carrying the new value, old the last match.
            r3 = await state.update(r2.with_metadata(labels={"env": "dev"}))
            flipped_out = await next_event(events)
            assert (flipped_out.type, flipped_out.resource, flipped_out.old) == (EventType.DESTROYED, r3, r2)
            # Changes to non-matching resources and their destruction are invisible.
            await state.update(r3.with_spec(Widget(size=7)))
            await state.destroy(r3.pointer)
            await no_event(events)

    async def test_watch_kind_id_query(self, state: WrappedState) -> None:
        async with state.watch_kind(WIDGETS, ids=IDQuery("^keep-")) as events:
            await state.create(widget("drop-1"))
            await state.create(widget("keep-1"))
            assert summary(await next_event(events)) == ("created", "keep-1", 1)
            await no_event(events)

    async def test_watchers_share_resource_values(self, state: WrappedState) -> None:
        async with state.watch_kind(WIDGETS) as first, state.watch_kind(WIDGETS) as second:
            created = await state.create(widget("a"))
            e1 = await next_event(first)
            e2 = await next_event(second)
        assert e1.resource is created
        assert e2.resource is created

    async def test_closed_watch_stops(self, state: WrappedState) -> None:
        events = state.watch_kind(WIDGETS)
        await events.aclose()
        await state.create(widget("a"))
        with pytest.raises(StopAsyncIteration):
            await events.__anext__()

    async def test_slow_watcher_resynchronises_alone(self, state: WrappedState) -> None:
        """History is 64 events per kind here: a watcher that reads nothing while 300 writes happen falls out
        of it and receives the net differences; a fast watcher next to it sees every event; writers never
        wait."""
        doomed = await state.create(widget("doomed"))
        changed = await state.create(widget("changed"))
        fast_seen: list[tuple[str, str | None, int | None]] = []
        slow = state.watch_kind(WIDGETS, bootstrap=True)
        fast = state.watch_kind(WIDGETS)
        total = 300

        async def fast_reader() -> None:
            async with fast:
                while len(fast_seen) < total + 2:
                    fast_seen.append(summary(await next_event(fast)))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(fast_reader)
                r = changed
                for i in range(total):
                    r = await state.update(r.with_spec(Widget(size=i + 1)))
                await state.destroy(doomed.pointer)
                await state.create(widget("born"))
        assert len(fast_seen) == total + 2
        assert fast_seen[-2:] == [("destroyed", "doomed", 1), ("created", "born", 1)]
        assert [v for (_t, _id, v) in fast_seen[:total]] == list(range(2, total + 2))

        async with slow:
            got = [await next_event(slow) for _ in range(6)]
            await no_event(slow)
            assert slow.resyncs == 1
        kinds = [summary(e) for e in got]
        # The bootstrap it had been sent before falling behind, then the differences (sorted by id).
        assert kinds[:3] == [
            ("created", "changed", 1),
            ("created", "doomed", 1),
            ("bootstrapped", None, None),
        ]
        assert kinds[3:] == [
            ("created", "born", 1),
            ("updated", "changed", total + 1),
            ("destroyed", "doomed", 1),
        ]
        assert got[4].old == changed

    async def test_sensitive_bytes_round_trip(self, state: WrappedState) -> None:
        created = await state.create(Resource.new(NS, GADGETS.type, "g", Gadget(blob=b"\x00\xff")))
        assert (await state.get(created.pointer)).spec.blob == b"\x00\xff"

    # One test function runs for every subclass (backend): hypothesis sees several executors. The examples do
    # not depend on the backend, and sharing its example database between backends is harmless.
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.differing_executors])
    @given(ops=OPERATIONS)
    def test_random_operations_match_the_model(self, ops: list[tuple[Any, ...]]) -> None:
        """Random operation sequences agree with a simple model, and a kind watcher that read along can
        rebuild the final state from its events; a persistent backend reopened holds the same resources."""
        with tempfile.TemporaryDirectory() as directory:
            anyio.run(run_operations, self.open_backend, self.persistent, ops, Path(directory))
