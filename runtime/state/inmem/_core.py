"""The in-memory backend: the index alone, nothing persisted."""

from __future__ import annotations

from typing import Any, final

from volumed.runtime._lowlevel import YieldBudget, checkpoint
from volumed.runtime.resource import Phase, Pointer, Resource

from .._index import DEFAULT_HISTORY, Clock, ResourceIndex, utc_now
from .._index_reads import IndexReads
from .._watch import closed_error

DEFAULT_YIELD_EVERY = 32
"""Writes between two yields to the event loop, for kinds nobody watches."""


@final
class InMemoryCore(IndexReads):
    """The default backend (cosi's inmem): all state in memory, lost when the process ends.

    A write validates and commits synchronously, so it is atomic without locks. It yields to the event loop
    first when the kind has open watchers (each gets to read it, as it comes), and otherwise only once every
    ``yield_every`` writes (a cooperative budget): a loop of writes cannot starve other tasks, and the writes
    nobody watches cost no trip through the event loop. Listeners (the controller runtime) need no trip at
    all: they are called inside the write. ``history`` bounds the per-kind event log watchers read from.
    """

    def __init__(
        self,
        *,
        history: int = DEFAULT_HISTORY,
        clock: Clock = utc_now,
        yield_every: int = DEFAULT_YIELD_EVERY,
    ) -> None:
        self._index = ResourceIndex(history=history, clock=clock)
        self._budget = YieldBudget(yield_every)

    async def create(self, resource: Resource[Any], *, owner: str | None = None) -> Resource[Any]:
        md = resource.metadata
        if self._yield_due(md.namespace, md.type):
            await checkpoint()
        event = self._index.plan_create(resource, owner=owner)
        self._index.apply(event)
        assert event.resource is not None
        return event.resource

    async def update(
        self,
        resource: Resource[Any],
        *,
        owner: str | None = None,
        expected_phase: Phase | None = Phase.RUNNING,
    ) -> Resource[Any]:
        md = resource.metadata
        if self._yield_due(md.namespace, md.type):
            await checkpoint()
        event = self._index.plan_update(resource, owner=owner, expected_phase=expected_phase)
        if event is None:
            return self._index.get(resource.pointer)
        self._index.apply(event)
        assert event.resource is not None
        return event.resource

    async def destroy(self, pointer: Pointer, *, owner: str = "") -> None:
        if self._yield_due(pointer.namespace, pointer.type):
            await checkpoint()
        self._index.apply(self._index.plan_destroy(pointer, owner=owner))

    async def add_finalizer(self, pointer: Pointer, *finalizers: str) -> Resource[Any]:
        return await self._finalizers(pointer, finalizers, add=True)

    async def remove_finalizer(self, pointer: Pointer, *finalizers: str) -> Resource[Any]:
        return await self._finalizers(pointer, finalizers, add=False)

    async def _finalizers(self, pointer: Pointer, finalizers: tuple[str, ...], *, add: bool) -> Resource[Any]:
        if self._yield_due(pointer.namespace, pointer.type):
            await checkpoint()
        event = self._index.plan_finalizers(pointer, finalizers, add=add)
        if event is None:
            return self._index.get(pointer)
        self._index.apply(event)
        assert event.resource is not None
        return event.resource

    async def teardown(self, pointer: Pointer, *, owner: str = "") -> bool:
        if self._yield_due(pointer.namespace, pointer.type):
            await checkpoint()
        event = self._index.plan_teardown(pointer, owner=owner)
        if event is not None:
            self._index.apply(event)
        return not self._index.get(pointer).metadata.finalizers

    def _yield_due(self, namespace: str, type_name: str) -> bool:
        # Every write counts against the budget; a kind somebody watches yields on every write, so a watcher
        # that takes one event per trip through the loop (e.g. to send it on a socket) keeps up.
        due = self._budget.spend()
        return due or self._index.watched(namespace, type_name)

    def close(self) -> None:
        """End every watch with an ERRORED event (the data stays readable)."""
        self._index.close(closed_error("in-memory state"))
