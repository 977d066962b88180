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
    from types import TracebackType

    from ._events import Event
    from ._protocols import StateReader
    from ._watch import EventStream, Listener


@final
class SensitiveGuard:
    """A `StateReader` for API layers (CLI `get`/`watch`, remote readers): sensitive types are refused.

    A type is sensitive when its registered definition says so; an unregistered type whose resources carry a
    `SensitiveSpec` is refused too (reads raise, listeners are not called with such a value, and a watch
    raises when one comes). ``privileged=True`` (an explicitly privileged caller) lets everything through.
    Refusal raises `SensitiveResourceError` before the value is handed over, so no secret reaches the caller
    or a log.
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
            if not _carries_secrets(event):
                listener(event)

        return self._reader.listen(kind, checked)

    def watch(self, pointer: Pointer) -> EventStream:
        self._check_type(pointer.type)
        return self._guarded(self._reader.watch(pointer))

    def watch_kind(
        self,
        kind: Kind,
        *,
        bootstrap: bool = False,
        labels: LabelQuery | None = None,
        ids: IDQuery | None = None,
    ) -> EventStream:
        self._check_type(kind.type)
        return self._guarded(self._reader.watch_kind(kind, bootstrap=bootstrap, labels=labels, ids=ids))

    def _guarded(self, stream: EventStream) -> EventStream:
        return stream if self._privileged else _RefusingStream(stream)


def _carries_secrets(event: Event) -> bool:
    return any(
        resource is not None and isinstance(resource.spec, SensitiveSpec)
        for resource in (event.resource, event.old)
    )


@final
class _RefusingStream:
    """A watch for an unprivileged caller: an event carrying a sensitive value ends it, as `get` would refuse.

    Registered sensitive types are refused before the watch starts; this catches an unregistered type whose
    values are sensitive. The stream raises `SensitiveResourceError` instead of handing the event over.
    """

    def __init__(self, stream: EventStream) -> None:
        self._stream = stream

    @property
    def resyncs(self) -> int:
        return self._stream.resyncs

    def __aiter__(self) -> _RefusingStream:
        return self

    async def __anext__(self) -> Event:
        event = await self._stream.__anext__()
        if _carries_secrets(event):
            await self._stream.aclose()
            resource = event.resource or event.old
            assert resource is not None
            raise SensitiveResourceError(resource.metadata.type)
        return event

    async def __aenter__(self) -> _RefusingStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._stream.aclose()
