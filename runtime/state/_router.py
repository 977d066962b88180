"""A router that sends each namespace to its own backend (cosi's namespaced state)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

from volumed.runtime.resource import IDQuery, Kind, LabelQuery, Phase, Pointer, Resource

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ._protocols import CoreState
    from ._watch import EventStream, Listener


@final
class NamespacedRouter:
    """A `CoreState` whose namespaces live in different backends (e.g. one namespace persisted in sqlite).

    Every operation addresses exactly one namespace, so each goes to exactly one backend and keeps that
    backend's guarantees; nothing spans backends.
    """

    def __init__(self, default: CoreState, routes: Mapping[str, CoreState] | None = None) -> None:
        self._default = default
        self._routes = dict(routes or {})

    def backend(self, namespace: str) -> CoreState:
        """The backend serving ``namespace``."""
        return self._routes.get(namespace, self._default)

    async def get(self, pointer: Pointer) -> Resource[Any]:
        return await self.backend(pointer.namespace).get(pointer)

    async def find(self, pointer: Pointer) -> Resource[Any] | None:
        return await self.backend(pointer.namespace).find(pointer)

    async def list(
        self, kind: Kind, *, labels: LabelQuery | None = None, ids: IDQuery | None = None
    ) -> list[Resource[Any]]:
        return await self.backend(kind.namespace).list(kind, labels=labels, ids=ids)

    def listen(self, kind: Kind, listener: Listener) -> Callable[[], None]:
        return self.backend(kind.namespace).listen(kind, listener)

    def watch(self, pointer: Pointer) -> EventStream:
        return self.backend(pointer.namespace).watch(pointer)

    def watch_kind(
        self,
        kind: Kind,
        *,
        bootstrap: bool = False,
        labels: LabelQuery | None = None,
        ids: IDQuery | None = None,
    ) -> EventStream:
        return self.backend(kind.namespace).watch_kind(kind, bootstrap=bootstrap, labels=labels, ids=ids)

    async def create(self, resource: Resource[Any], *, owner: str | None = None) -> Resource[Any]:
        return await self.backend(resource.metadata.namespace).create(resource, owner=owner)

    async def update(
        self,
        resource: Resource[Any],
        *,
        owner: str | None = None,
        expected_phase: Phase | None = Phase.RUNNING,
    ) -> Resource[Any]:
        return await self.backend(resource.metadata.namespace).update(
            resource, owner=owner, expected_phase=expected_phase
        )

    async def destroy(self, pointer: Pointer, *, owner: str = "") -> None:
        await self.backend(pointer.namespace).destroy(pointer, owner=owner)

    async def add_finalizer(self, pointer: Pointer, *finalizers: str) -> Resource[Any]:
        return await self.backend(pointer.namespace).add_finalizer(pointer, *finalizers)

    async def remove_finalizer(self, pointer: Pointer, *finalizers: str) -> Resource[Any]:
        return await self.backend(pointer.namespace).remove_finalizer(pointer, *finalizers)

    async def teardown(self, pointer: Pointer, *, owner: str = "") -> bool:
        return await self.backend(pointer.namespace).teardown(pointer, owner=owner)
