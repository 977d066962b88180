"""Operations derived once from any backend's minimal core (cosi pkg/state/wrap.go)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

from volumed.runtime._lowlevel import checkpoint
from volumed.runtime.resource import IDQuery, Kind, LabelQuery, Phase, Pointer, Resource

from ._errors import AlreadyExistsError, ConflictError, NotFoundError, StateError
from ._events import EventType

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from ._protocols import CoreState, UpdateFn
    from ._watch import EventStream, Listener

DEFAULT_MAX_ATTEMPTS = 100
"""How many version conflicts `modify` and `update_with_conflicts` absorb before giving up."""


@final
class WrappedState:
    """A full `State` over any `CoreState`: plain delegation plus the derived operations."""

    def __init__(self, core: CoreState, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> None:
        self._core = core
        self._max_attempts = max_attempts

    @property
    def core(self) -> CoreState:
        """The backend this state wraps."""
        return self._core

    # Plain delegation hands back the core's own coroutine: no extra frame on every call.

    def get(self, pointer: Pointer) -> Coroutine[Any, Any, Resource[Any]]:
        return self._core.get(pointer)

    def find(self, pointer: Pointer) -> Coroutine[Any, Any, Resource[Any] | None]:
        return self._core.find(pointer)

    def list(
        self, kind: Kind, *, labels: LabelQuery | None = None, ids: IDQuery | None = None
    ) -> Coroutine[Any, Any, list[Resource[Any]]]:
        return self._core.list(kind, labels=labels, ids=ids)

    def listen(self, kind: Kind, listener: Listener) -> Callable[[], None]:
        return self._core.listen(kind, listener)

    def watch(self, pointer: Pointer) -> EventStream:
        return self._core.watch(pointer)

    def watch_kind(
        self,
        kind: Kind,
        *,
        bootstrap: bool = False,
        labels: LabelQuery | None = None,
        ids: IDQuery | None = None,
    ) -> EventStream:
        return self._core.watch_kind(kind, bootstrap=bootstrap, labels=labels, ids=ids)

    def create(
        self, resource: Resource[Any], *, owner: str | None = None
    ) -> Coroutine[Any, Any, Resource[Any]]:
        return self._core.create(resource, owner=owner)

    def update(
        self,
        resource: Resource[Any],
        *,
        owner: str | None = None,
        expected_phase: Phase | None = Phase.RUNNING,
    ) -> Coroutine[Any, Any, Resource[Any]]:
        return self._core.update(resource, owner=owner, expected_phase=expected_phase)

    def destroy(self, pointer: Pointer, *, owner: str = "") -> Coroutine[Any, Any, None]:
        return self._core.destroy(pointer, owner=owner)

    def add_finalizer(self, pointer: Pointer, *finalizers: str) -> Coroutine[Any, Any, Resource[Any]]:
        return self._core.add_finalizer(pointer, *finalizers)

    def remove_finalizer(self, pointer: Pointer, *finalizers: str) -> Coroutine[Any, Any, Resource[Any]]:
        return self._core.remove_finalizer(pointer, *finalizers)

    def teardown(self, pointer: Pointer, *, owner: str = "") -> Coroutine[Any, Any, bool]:
        return self._core.teardown(pointer, owner=owner)

    async def update_with_conflicts(
        self,
        pointer: Pointer,
        fn: UpdateFn,
        *,
        owner: str | None = None,
        expected_phase: Phase | None = Phase.RUNNING,
    ) -> Resource[Any]:
        last: ConflictError | None = None
        for _ in range(self._max_attempts):
            current = await self._core.get(pointer)
            desired = _checked(fn(current), pointer)
            try:
                return await self._core.update(
                    _at_version(desired, current.version), owner=owner, expected_phase=expected_phase
                )
            except ConflictError as exc:
                last = exc
                await checkpoint()
        assert last is not None
        raise last

    async def modify(
        self,
        template: Resource[Any],
        fn: UpdateFn,
        *,
        owner: str | None = None,
        expected_phase: Phase | None = Phase.RUNNING,
    ) -> Resource[Any]:
        pointer = template.pointer
        last: StateError | None = None
        for _ in range(self._max_attempts):
            current = await self._core.find(pointer)
            if current is None:
                try:
                    return await self._core.create(_checked(fn(template), pointer), owner=owner)
                except AlreadyExistsError as exc:
                    last = exc
                    continue
            desired = _checked(fn(current), pointer)
            try:
                return await self._core.update(
                    _at_version(desired, current.version), owner=owner, expected_phase=expected_phase
                )
            except (ConflictError, NotFoundError) as exc:
                last = exc
                await checkpoint()
        assert last is not None
        raise last

    async def teardown_and_destroy(self, pointer: Pointer, *, owner: str = "") -> None:
        # Watch first so no finalizer removal between teardown and the wait is missed.
        async with self._core.watch(pointer) as events:
            try:
                ready = await self._core.teardown(pointer, owner=owner)
            except NotFoundError:
                return
            if not ready:
                async for event in events:
                    if event.type in (EventType.DESTROYED, EventType.NOOP):
                        return
                    if event.type is EventType.ERRORED:
                        assert event.error is not None
                        raise event.error
                    resource = event.resource
                    if (
                        resource is not None
                        and resource.metadata.phase is Phase.TEARING_DOWN
                        and not resource.metadata.finalizers
                    ):
                        break
            try:
                await self._core.destroy(pointer, owner=owner)
            except NotFoundError:
                return


def _checked(resource: object, pointer: Pointer) -> Resource[Any]:
    if not isinstance(resource, Resource) or resource.pointer != pointer:
        raise TypeError(f"the update function for {pointer} must return a Resource with the same pointer")
    return resource


def _at_version(resource: Resource[Any], version: int) -> Resource[Any]:
    return resource if resource.version == version else resource.with_metadata(version=version)
