"""The model of the property test: random operation sequences, what a correct state does with each, and a run
of one sequence on a backend next to a watcher that reads along."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from hypothesis import strategies as st

from volumed.runtime.resource import Phase, Resource
from volumed.runtime.state import (
    AlreadyExistsError,
    ConflictError,
    EventStream,
    EventType,
    NotFoundError,
    OwnerConflictError,
    PendingFinalizersError,
    PhaseConflictError,
    StateError,
    WrappedState,
)

from ._backend import BackendSetup
from ._specs import SUITE_REGISTRY, WIDGETS, Widget, widget

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    from volumed.runtime.state import CoreState

    Opener = Callable[[BackendSetup], AbstractAsyncContextManager[CoreState]]

IDS = st.sampled_from(["a", "b", "c"])
OWNERS = st.sampled_from(["", "x"])
FINALIZERS = st.sampled_from(["f1", "f2"])
SIZES = st.integers(0, 3)

OPERATION = st.one_of(
    st.tuples(st.just("create"), IDS, OWNERS, SIZES),
    st.tuples(st.just("update"), IDS, OWNERS, SIZES, st.booleans()),
    st.tuples(st.just("destroy"), IDS, OWNERS),
    st.tuples(st.just("add_finalizer"), IDS, FINALIZERS),
    st.tuples(st.just("remove_finalizer"), IDS, FINALIZERS),
    st.tuples(st.just("teardown"), IDS, OWNERS),
    st.tuples(st.just("modify"), IDS, OWNERS, SIZES),
)


@dataclass
class Model:
    version: int
    owner: str
    size: int
    finalizers: list[str] = field(default_factory=list)
    phase: Phase = Phase.RUNNING


def expect(models: dict[str, Model], op: tuple[Any, ...]) -> type[StateError] | None:
    """Apply ``op`` to the model; return the error the state must raise (None: success)."""
    name, rid = op[0], op[1]
    m = models.get(rid)
    if name == "create":
        if m is not None:
            return AlreadyExistsError
        models[rid] = Model(1, op[2], op[3])
        return None
    if name == "modify":
        if m is None:
            models[rid] = Model(1, op[2], op[3])
            return None
        if m.owner != op[2]:
            return OwnerConflictError
        if m.phase is not Phase.RUNNING:
            return PhaseConflictError
        if m.size != op[3]:
            m.size, m.version = op[3], m.version + 1
        return None
    if m is None:
        return NotFoundError
    if name == "update":
        owner, size, stale = op[2], op[3], op[4]
        if owner != m.owner:
            return OwnerConflictError
        if stale:
            return ConflictError
        if m.phase is not Phase.RUNNING:
            return PhaseConflictError
        if size != m.size:
            m.size, m.version = size, m.version + 1
        return None
    if name == "destroy":
        if op[2] != m.owner:
            return OwnerConflictError
        if m.finalizers:
            return PendingFinalizersError
        del models[rid]
        return None
    if name == "add_finalizer":
        if op[2] not in m.finalizers:
            m.finalizers.append(op[2])
            m.version += 1
        return None
    if name == "remove_finalizer":
        if op[2] in m.finalizers:
            m.finalizers.remove(op[2])
            m.version += 1
        return None
    assert name == "teardown"
    if op[2] != m.owner:
        return OwnerConflictError
    if m.phase is Phase.RUNNING:
        m.phase, m.version = Phase.TEARING_DOWN, m.version + 1
    return None


async def perform(state: WrappedState, op: tuple[Any, ...]) -> None:
    name, rid = op[0], op[1]
    pointer = WIDGETS.pointer(rid)
    if name == "create":
        await state.create(widget(rid, op[3]), owner=op[2])
    elif name == "modify":

        def resize(r: Resource[Any]) -> Resource[Any]:
            return r.with_spec(Widget(size=op[3]))

        await state.modify(widget(rid, op[3]), resize, owner=op[2])
    elif name == "update":
        try:
            current = await state.get(pointer)
        except NotFoundError:
            current = widget(rid).with_metadata(version=1)
        version = current.version - 1 if op[4] else current.version
        await state.update(current.with_spec(Widget(size=op[3])).with_metadata(version=version), owner=op[2])
    elif name == "destroy":
        await state.destroy(pointer, owner=op[2])
    elif name == "add_finalizer":
        await state.add_finalizer(pointer, op[2])
    elif name == "remove_finalizer":
        await state.remove_finalizer(pointer, op[2])
    else:
        await state.teardown(pointer, owner=op[2])


async def drain(events: EventStream, seen: dict[str, Resource[Any]]) -> None:
    """Apply every event the stream has ready to ``seen`` (a watcher's own view of the kind)."""
    while True:
        with anyio.move_on_after(0.001):
            event = await events.__anext__()
            assert event.resource is not None
            if event.type is EventType.DESTROYED:
                seen.pop(event.resource.id, None)
            else:
                seen[event.resource.id] = event.resource
            continue
        break


OPERATIONS = st.lists(OPERATION, max_size=40)

MODEL_HISTORY = 8
"""A short history, so that the watcher reading along sometimes falls out of it and is resynchronised."""


async def run_operations(
    open_backend: Opener, persistent: bool, ops: list[tuple[Any, ...]], directory: Path
) -> None:
    """Perform ``ops`` on a fresh backend, each checked against the model; then compare the stored kind with
    the model and with what a watcher rebuilt; a ``persistent`` backend opened again must hold the same."""
    setup = BackendSetup(SUITE_REGISTRY, directory, history=MODEL_HISTORY, durable=False)
    async with open_backend(setup) as core:
        state = WrappedState(core)
        models: dict[str, Model] = {}
        seen: dict[str, Resource[Any]] = {}
        async with state.watch_kind(WIDGETS, bootstrap=True) as events:
            assert (await events.__anext__()).type is EventType.BOOTSTRAPPED
            for i, op in enumerate(ops):
                error = expect(models, op)
                if error is None:
                    await perform(state, op)
                else:
                    with pytest.raises(error):
                        await perform(state, op)
                # Read along at random-ish moments, sometimes after the short history overflowed.
                if i % 3 == 0 or op[0] == "destroy":
                    await drain(events, seen)
            stored = {r.id: r for r in await state.list(WIDGETS)}
            assert set(stored) == set(models)
            for rid, m in models.items():
                md = stored[rid].metadata
                assert (md.version, md.owner, md.phase) == (m.version, m.owner, m.phase), rid
                assert list(md.finalizers) == m.finalizers
                assert stored[rid].spec.size == m.size
            await drain(events, seen)
            assert seen == stored
    if persistent:
        async with open_backend(setup) as reopened:
            assert {r.id: r for r in await reopened.list(WIDGETS)} == stored
