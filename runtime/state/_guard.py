"""Keeps sensitive resources away from unprivileged API callers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

from volumed.runtime.resource import (
    IDQuery,
    Kind,
    LabelQuery,
    Pointer,
    Resource,
    ResourceRegistry,
    SensitiveSpec,
)

from ._errors import SensitiveResourceError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._events import Event
    from ._protocols import StateReader
    from ._watch import EventStream, Listener


@final
class SensitiveGuard:
    """A `StateReader` for API layers (CLI `get`/`watch`, remote readers): sensitive types are refused.

    A type is sensitive when its registered definition says so; an unregistered type whose resources carry a
    `SensitiveSpec` is refused too. ``privileged=True`` (an explicitly privileged caller) lets everything
    through.
    Refusal raises `SensitiveResourceError` before anything is read, so no secret reaches the caller or a log.
    """

    def __init__(self, reader: StateReader, registry: ResourceRegistry, *, privileged: bool = False) -> None:
        self._reader = reader
        self._registry = registry
        self._privileged = privileged

    @property
    def privileged(self) -> bool:
        """Whether this guard lets sensitive types through."""
        return self._privileged

    def _check_type(self, type_name: str) -> None:
        if not self._privileged and self._registry.is_sensitive(type_name):
            raise SensitiveResourceError(type_name)

    def _check_value(self, resource: Resource[Any]) -> Resource[Any]:
        if not self._privileged and isinstance(resource.spec, SensitiveSpec):
            raise SensitiveResourceError(resource.metadata.type)
        return resource

    async def get(self, pointer: Pointer) -> Resource[Any]:
        self._check_type(pointer.type)
        return self._check_value(await self._reader.get(pointer))

    async def find(self, pointer: Pointer) -> Resource[Any] | None:
        self._check_type(pointer.type)
        found = await self._reader.find(pointer)
        return None if found is None else self._check_value(found)

    async def list(
        self, kind: Kind, *, labels: LabelQuery | None = None, ids: IDQuery | None = None
    ) -> list[Resource[Any]]:
        self._check_type(kind.type)
        return [self._check_value(r) for r in await self._reader.list(kind, labels=labels, ids=ids)]

    def listen(self, kind: Kind, listener: Listener) -> Callable[[], None]:
        self._check_type(kind.type)
        if self._privileged:
            return self._reader.listen(kind, listener)

        def checked(event: Event) -> None:
            # An unregistered type is judged by its values: a sensitive one is never handed over.
            resource = event.resource
            if resource is None or not isinstance(resource.spec, SensitiveSpec):
                listener(event)

        return self._reader.listen(kind, checked)

    def watch(self, pointer: Pointer) -> EventStream:
        self._check_type(pointer.type)
        return self._reader.watch(pointer)

    def watch_kind(
        self,
        kind: Kind,
        *,
        bootstrap: bool = False,
        labels: LabelQuery | None = None,
        ids: IDQuery | None = None,
    ) -> EventStream:
        self._check_type(kind.type)
        return self._reader.watch_kind(kind, bootstrap=bootstrap, labels=labels, ids=ids)
