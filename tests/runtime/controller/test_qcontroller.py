"""Per-resource controllers: keyed queue, mapped secondary inputs, concurrency, per-key backoff, requeue."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import anyio
import structlog

from volumed.runtime import Kind, NotFoundError, Pointer, Resource, in_memory_state
from volumed.runtime.controller import (
    BackoffPolicy,
    ControllerContext,
    ControllerReader,
    Input,
    Output,
    QController,
)
from volumed.runtime.testing import assert_no_resource, assert_resource, run_runtime

from ._support import DERIVED, NS, SOURCES, Value, derived_ptr, source

if TYPE_CHECKING:
    from collections.abc import Sequence

SETTINGS = Kind(NS, "Settings.test.volumed.dev")


class PerSource(QController):
    """Derives one resource per source, value * factor, where factor comes from the "factor" setting."""

    name = "PerSource"
    inputs = (Input(NS, SOURCES.type), Input(NS, SETTINGS.type, id="factor"))
    outputs = (Output(DERIVED.type),)

    def __init__(self, concurrency: int = 1) -> None:
        self.concurrency = concurrency
        self.active: set[Pointer] = set()
        self.overlaps: list[Pointer] = []
        self.peak = 0
        self.calls: list[str] = []
        self.gate: anyio.Event | None = None

    async def map_input(self, reader: ControllerReader, resource: Resource[Any]) -> Sequence[Pointer]:
        if resource.metadata.type == SETTINGS.type:  # a secondary input: every source is affected
            return [r.pointer for r in await reader.list(SOURCES)]
        return [resource.pointer]

    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        if pointer in self.active:
            self.overlaps.append(pointer)
        self.active.add(pointer)
        self.peak = max(self.peak, len(self.active))
        self.calls.append(pointer.id)
        try:
            if self.gate is not None:
                await self.gate.wait()
            src = await ctx.find(pointer, Value)
            if src is None:
                with contextlib.suppress(NotFoundError):
                    await ctx.destroy(derived_ptr(pointer.id))
                return
            setting = await ctx.find(SETTINGS.pointer("factor"), Value)
            factor = setting.spec.value if setting else 1
            await ctx.apply(Resource.new(NS, DERIVED.type, pointer.id, Value(value=src.spec.value * factor)))
        finally:
            self.active.discard(pointer)


async def test_each_resource_is_reconciled_and_secondary_inputs_are_mapped() -> None:
    state = in_memory_state()
    await state.create(source("before", 1))  # present before the start: picked up by the initial mapping
    async with run_runtime(PerSource(), state=state):
        await assert_resource(state, derived_ptr("before"), lambda r: r.spec.value == 1)
        await state.create(source("after", 2))
        await assert_resource(state, derived_ptr("after"), lambda r: r.spec.value == 2)

        await state.create(Resource.new(NS, SETTINGS.type, "factor", Value(value=10)))
        await assert_resource(state, derived_ptr("before"), lambda r: r.spec.value == 10)
        await assert_resource(state, derived_ptr("after"), lambda r: r.spec.value == 20)

        await state.destroy(SOURCES.pointer("after"))
        await assert_no_resource(state, derived_ptr("after"))


async def test_keys_are_deduplicated_and_never_reconciled_twice_at_once() -> None:
    ctl = PerSource(concurrency=4)
    ctl.gate = anyio.Event()
    async with run_runtime(ctl) as rt:
        state = rt.state
        for index in range(8):
            await state.create(source(f"s{index}", index))
        await anyio.wait_all_tasks_blocked()
        assert ctl.peak == 4  # the concurrency setting bounds parallel keys
        # Many changes to keys that are processing or queued: each is queued at most once more.
        for _ in range(5):
            for index in range(8):
                current = await state.get(SOURCES.pointer(f"s{index}"))
                await state.update(current.with_spec(Value(value=current.spec.value + 100)))
        await anyio.wait_all_tasks_blocked()
        assert rt.stats()["PerSource"].queue_length == 4  # the 4 waiting keys, once each
        ctl.gate.set()
        for index in range(8):
            await assert_resource(state, derived_ptr(f"s{index}"), lambda r, i=index: r.spec.value == i + 500)
        await anyio.wait_all_tasks_blocked()
    assert ctl.overlaps == []
    # 8 first runs, then at most one more per key (the 4 that were processing) — never one per change.
    assert len(ctl.calls) <= 16
    assert rt.stats()["PerSource"].queue_length == 0


class FlakyKey(QController):
    """Key "bad" fails twice, then succeeds; later it can be made to fail again."""

    name = "FlakyKey"
    inputs = (Input(NS, SOURCES.type),)

    def __init__(self) -> None:
        self.fail = {"bad": 2}
        self.calls: list[str] = []
        self.ok = anyio.Event()

    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        self.calls.append(pointer.id)
        if self.fail.get(pointer.id, 0) > 0:
            self.fail[pointer.id] -= 1
            raise RuntimeError(f"{pointer.id} not ready")
        if pointer.id == "bad":
            self.ok.set()


async def test_per_key_backoff_is_cleared_on_success() -> None:
    ctl = FlakyKey()
    policy = BackoffPolicy(initial=0.01, multiplier=3.0, jitter=0.0, maximum=1.0)
    with structlog.testing.capture_logs() as logs:
        async with run_runtime(ctl, backoff=policy) as rt:
            await rt.state.create(source("bad"))
            await rt.state.create(source("good"))
            with anyio.fail_after(5):
                await ctl.ok.wait()
            assert ctl.calls.count("good") == 1  # the failing key delayed nobody else
            ctl.fail["bad"] = 1
            ctl.ok = anyio.Event()
            current = await rt.state.get(SOURCES.pointer("bad"))
            await rt.state.update(current.with_spec(Value(value=1)))
            with anyio.fail_after(5):
                await ctl.ok.wait()
            assert rt.stats()["FlakyKey"].errors == 3
    failed = [(e["key"], e["retry_in"], e["failures"]) for e in logs if e["event"] == "reconcile failed"]
    bad = str(SOURCES.pointer("bad"))
    assert failed == [(bad, 0.01, 1), (bad, 0.03, 2), (bad, 0.01, 1)]  # the streak restarted after success


class Periodic(QController):
    name = "Periodic"
    inputs = (Input(NS, SOURCES.type),)

    def __init__(self) -> None:
        self.calls = 0
        self.third = anyio.Event()

    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        self.calls += 1
        if self.calls < 3:
            ctx.requeue_after(0.01)
        else:
            self.third.set()


async def test_requeue_after_reconciles_the_key_again() -> None:
    ctl = Periodic()
    async with run_runtime(ctl) as rt:
        await rt.state.create(source("p"))
        with anyio.fail_after(5):
            await ctl.third.wait()
        await anyio.sleep(0.05)
    assert ctl.calls == 3


class BadMapper(QController):
    name = "BadMapper"
    inputs = (Input(NS, SOURCES.type),)

    async def map_input(self, reader: ControllerReader, resource: Resource[Any]) -> Sequence[Pointer]:
        raise ValueError("cannot map")

    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        raise AssertionError("never called")


async def test_a_failing_mapping_is_counted_and_does_not_stop_the_feed() -> None:
    with structlog.testing.capture_logs() as logs:
        async with run_runtime(BadMapper(), PerSource()) as rt:
            await rt.state.create(source("x", 3))
            await assert_resource(rt.state, derived_ptr("x"), lambda r: r.spec.value == 3)
            assert rt.stats()["BadMapper"].errors == 1
    assert any(e["event"] == "map_input failed; change dropped" for e in logs)


class SlowMapper(QController):
    """Records the values map_input is given, and is slow enough for changes to pile up behind it."""

    name = "SlowMapper"
    inputs = (Input(NS, SOURCES.type),)

    def __init__(self) -> None:
        self.mapped: list[tuple[str, int]] = []
        self.gate = anyio.Event()

    async def map_input(self, reader: ControllerReader, resource: Resource[Any]) -> Sequence[Pointer]:
        await self.gate.wait()
        self.mapped.append((resource.id, resource.version))
        return [resource.pointer]

    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        pass


async def test_every_value_waiting_for_map_input_is_mapped_in_order() -> None:
    mapper = SlowMapper()
    async with run_runtime(mapper) as rt:
        state = rt.state
        a = await state.create(source("a", 0))
        await anyio.wait_all_tasks_blocked()  # the mapping task holds "a" v1 at the gate
        b = await state.create(source("b", 0))
        for value in range(1, 50):  # writes never wait for the mapping task
            a = await state.update(a.with_spec(Value(value=value)))
        b = await state.update(b.with_spec(Value(value=1)))
        assert rt.stats()["SlowMapper"].queue_length == 2  # a and b wait to be mapped
        mapper.gate.set()
        await anyio.wait_all_tasks_blocked()
    # Per resource in the order they first changed: the value before its first waiting change (b had none: its
    # creation was still waiting), then every value it took, since a reconcile may have read any of them.
    assert mapper.mapped == [("a", 1), ("b", 1), ("b", 2), *(("a", v) for v in range(1, 51))]


class BrokenMapper(QController):
    """A map_input with a branch that forgets to return, and one that returns an unhashable key."""

    name = "BrokenMapper"
    inputs = (Input(NS, SOURCES.type),)

    async def map_input(self, reader: ControllerReader, resource: Resource[Any]) -> Sequence[Pointer]:
        if resource.spec.value == 1:
            return None  # type: ignore[return-value]
        return [[resource.pointer]]  # type: ignore[list-item]

    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        raise AssertionError("never called")


async def test_a_mapping_that_returns_no_keys_or_bad_keys_is_dropped_not_fatal() -> None:
    """The keys were put outside the error handling: None, or an unhashable key, ended the whole runtime."""
    with structlog.testing.capture_logs() as logs:
        async with run_runtime(BrokenMapper(), PerSource()) as rt:
            await rt.state.create(source("x", 1))
            await rt.state.create(source("y", 2))
            await assert_resource(rt.state, derived_ptr("y"), lambda r: r.spec.value == 2)
            await anyio.wait_all_tasks_blocked()
            assert rt.stats()["BrokenMapper"].errors == 2
    assert sum(e["event"] == "map_input failed; change dropped" for e in logs) == 2


class ParentOfChild(QController):
    """Maps a child (a Value whose number names its parent) onto that parent; records the parents."""

    name = "ParentOfChild"
    inputs = (Input(NS, SOURCES.type),)

    def __init__(self) -> None:
        self.reconciled: list[str] = []

    async def map_input(self, reader: ControllerReader, resource: Resource[Any]) -> Sequence[Pointer]:
        return [DERIVED.pointer(f"parent-{resource.spec.value}")]

    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        self.reconciled.append(pointer.id)


async def test_a_resource_that_moves_wakes_the_key_it_left_and_the_one_it_joined() -> None:
    ctl = ParentOfChild()
    async with run_runtime(ctl) as rt:
        state = rt.state
        child = await state.create(source("c", 1))
        await anyio.wait_all_tasks_blocked()
        assert ctl.reconciled == ["parent-1"]
        # An update that moves it: the old value's key must learn it is gone.
        await state.update(child.with_spec(Value(value=2)))
        await anyio.wait_all_tasks_blocked()
        assert sorted(ctl.reconciled[1:]) == ["parent-1", "parent-2"]
        # Destroyed and created again at once (no suspension in between): both incarnations are mapped.
        del ctl.reconciled[:]
        await state.destroy(SOURCES.pointer("c"))
        await state.create(source("c", 3))
        await anyio.wait_all_tasks_blocked()
        assert sorted(ctl.reconciled) == ["parent-2", "parent-3"]


class GatedParentOfChild(QController):
    """`ParentOfChild` whose mapping waits at a gate, so changes pile up behind it."""

    name = "GatedParentOfChild"
    inputs = (Input(NS, SOURCES.type),)

    def __init__(self) -> None:
        self.gate = anyio.Event()
        self.reconciled: list[str] = []

    async def map_input(self, reader: ControllerReader, resource: Resource[Any]) -> Sequence[Pointer]:
        await self.gate.wait()
        return [DERIVED.pointer(f"parent-{resource.spec.value}")]

    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        self.reconciled.append(pointer.id)


async def test_a_key_a_resource_passed_through_while_mapping_was_busy_is_woken() -> None:
    """Only the first and the latest value used to be mapped: a key that a reconcile saw the resource in
    meanwhile (through a retry or a requeue) kept a stale result for good."""
    ctl = GatedParentOfChild()
    async with run_runtime(ctl) as rt:
        state = rt.state
        blocker = await state.create(source("blocker", 0))
        await anyio.wait_all_tasks_blocked()  # the mapping task waits at the gate with "blocker"
        child = await state.create(source("c", 1))
        child = await state.update(child.with_spec(Value(value=2)))
        await state.update(child.with_spec(Value(value=3)))
        ctl.gate.set()
        await anyio.wait_all_tasks_blocked()
    assert blocker.spec.value == 0
    assert sorted(set(ctl.reconciled)) == ["parent-0", "parent-1", "parent-2", "parent-3"]
