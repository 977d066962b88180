"""The in-memory backend: the index alone, nothing persisted."""

from __future__ import annotations

from typing import Any, final

import anyio.lowlevel

from volumed.runtime.resource import Phase, Pointer, Resource

from .._index import DEFAULT_HISTORY, Clock, ResourceIndex, utc_now
from .._index_reads import IndexReads
from .._watch import closed_error


@final
class InMemoryCore(IndexReads):
    """The default backend (cosi's inmem): all state in memory, lost when the process ends.

    Each write checkpoints first (cancellation before a write leaves the state untouched) and then validates
    and commits synchronously, so writes are atomic without locks and watchers get a chance to run between
    writes. ``history`` bounds the per-kind event log watchers read from.
    """

    def __init__(self, *, history: int = DEFAULT_HISTORY, clock: Clock = utc_now) -> None:
        self._index = ResourceIndex(history=history, clock=clock)

    async def create(self, resource: Resource[Any], *, owner: str | None = None) -> Resource[Any]:
        await anyio.lowlevel.checkpoint()
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
        await anyio.lowlevel.checkpoint()
        event = self._index.plan_update(resource, owner=owner, expected_phase=expected_phase)
        if event is None:
            return self._index.get(resource.pointer)
        self._index.apply(event)
        assert event.resource is not None
        return event.resource

    async def destroy(self, pointer: Pointer, *, owner: str = "") -> None:
        await anyio.lowlevel.checkpoint()
        self._index.apply(self._index.plan_destroy(pointer, owner=owner))

    async def add_finalizer(self, pointer: Pointer, *finalizers: str) -> Resource[Any]:
        return await self._finalizers(pointer, finalizers, add=True)

    async def remove_finalizer(self, pointer: Pointer, *finalizers: str) -> Resource[Any]:
        return await self._finalizers(pointer, finalizers, add=False)

    async def _finalizers(self, pointer: Pointer, finalizers: tuple[str, ...], *, add: bool) -> Resource[Any]:
        await anyio.lowlevel.checkpoint()
        event = self._index.plan_finalizers(pointer, finalizers, add=add)
        if event is None:
            return self._index.get(pointer)
        self._index.apply(event)
        assert event.resource is not None
        return event.resource

    async def teardown(self, pointer: Pointer, *, owner: str = "") -> bool:
        await anyio.lowlevel.checkpoint()
        event = self._index.plan_teardown(pointer, owner=owner)
        if event is not None:
            self._index.apply(event)
        return not self._index.get(pointer).metadata.finalizers

    def close(self) -> None:
        """End every watch with an ERRORED event (the data stays readable)."""
        self._index.close(closed_error("in-memory state"))
