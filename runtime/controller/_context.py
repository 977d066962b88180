"""The reader/writer a reconcile gets: the state, narrowed to the controller's declarations and stamped."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, TypeVar, final

from pydantic import BaseModel

from volumed.runtime.resource import Phase
from volumed.runtime.state import AlreadyExistsError, ConflictError, NotFoundError, PhaseConflictError

from ._errors import UndeclaredAccessError
from ._reader import ControllerReader

if TYPE_CHECKING:
    from collections.abc import Callable

    import structlog

    from volumed.runtime.resource import Pointer, Resource
    from volumed.runtime.state import State

    from ._access import AccessRules
    from ._metrics import ControllerMetrics

SpecT = TypeVar("SpecT", bound=BaseModel)

_MAX_ATTEMPTS = 100
"""Write races `modify` absorbs (re-reading each time) before giving up with ConflictError."""


@final
class ControllerContext(ControllerReader):
    """What a reconcile reads and writes through (cosi's controller.Runtime adapter).

    Writes are confined to declared outputs and stamped with the controller's name as owner; the state
    refuses updates and destroys of resources another controller owns. Finalizers (named after the
    controller) may be put only on strong inputs. Every successful create/update/apply/modify marks the
    resource as *touched* for this reconcile (see `Controller` for the cleanup of untouched outputs).

    A context belongs to one reconcile; do not keep it.
    """

    __slots__ = ("_requeue_after", "touched")

    def __init__(
        self,
        state: State,
        rules: AccessRules,
        metrics: ControllerMetrics,
        logger: structlog.typing.FilteringBoundLogger,
    ) -> None:
        super().__init__(state, rules, metrics, logger)
        self.touched: set[Pointer] = set()
        self._requeue_after: float | None = None

    # --- requeue ----------

    def requeue_after(self, seconds: float) -> None:
        """Reconcile again after ``seconds`` even if no input changes (the earliest request wins)."""
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"requeue_after needs a non-negative number of seconds, got {seconds!r}")
        if self._requeue_after is None or seconds < self._requeue_after:
            self._requeue_after = seconds

    @property
    def requested_requeue(self) -> float | None:
        """The delay asked for with `requeue_after`, if any."""
        return self._requeue_after

    # --- writes ----------

    async def create(self, resource: Resource[SpecT]) -> Resource[SpecT]:
        """Create an output owned by this controller. Raises AlreadyExistsError."""
        pointer = resource.pointer
        self._check_write("create", pointer)
        created: Resource[SpecT] = await self._state.create(resource, owner=self.name)
        self._wrote(pointer)
        return created

    async def update(self, resource: Resource[SpecT]) -> Resource[SpecT]:
        """Update an owned output at ``resource.version``. Raises ConflictError, OwnerConflictError, ..."""
        pointer = resource.pointer
        self._check_write("update", pointer)
        updated: Resource[SpecT] = await self._state.update(resource, owner=self.name)
        self._wrote(pointer)
        return updated

    async def modify(
        self, template: Resource[SpecT], fn: Callable[[Resource[SpecT]], Resource[SpecT]]
    ) -> Resource[SpecT]:
        """Create-or-update an output: ``fn`` maps the current value (or ``template``) to the desired one.

        Retried on version conflicts. An output of this controller that is still tearing down (from an
        earlier cleanup) is destroyed and created afresh once no finalizers hold it; while they do, this
        raises PhaseConflictError (so the reconcile is retried later) instead of resurrecting it.
        """
        pointer = template.pointer
        self._check_write("write", pointer)
        return await self._converge(pointer, template, fn, await self._state.find(pointer))

    async def _converge(
        self,
        pointer: Pointer,
        template: Resource[SpecT],
        fn: Callable[[Resource[SpecT]], Resource[SpecT]],
        current: Resource[SpecT] | None,
    ) -> Resource[SpecT]:
        """`modify` from a first read of ``pointer`` already made (``current``); later attempts read again."""
        state = self._state
        owner = self.name
        race: Exception | None = None
        for attempt in range(_MAX_ATTEMPTS):
            if attempt:
                current = await state.find(pointer)
            try:
                if current is None:
                    result = await state.create(_same_pointer(fn(template), pointer), owner=owner)
                elif current.metadata.phase is Phase.TEARING_DOWN:
                    await self._replace_torn_down(current)
                    continue
                else:
                    desired = _same_pointer(fn(current), pointer)
                    if desired is current:
                        self.touched.add(pointer)  # unchanged, but still wanted: not cleaned up
                        return current
                    if desired.metadata.version != current.metadata.version:
                        desired = desired.with_metadata(version=current.metadata.version)
                    result = await state.update(desired, owner=owner)
            except (AlreadyExistsError, ConflictError, NotFoundError) as exc:
                race = exc  # raced with another writer: read again
                continue
            self._wrote(pointer)
            return result
        assert race is not None
        raise race

    async def apply(self, resource: Resource[SpecT]) -> Resource[SpecT]:
        """Make the output at ``resource.pointer`` carry ``resource``'s spec, labels and annotations.

        The common case of `modify`: create it if absent, update it if different, do nothing if equal.
        """
        pointer = resource.pointer
        self._check_write("write", pointer)
        current: Resource[SpecT] | None = await self._state.find(pointer)
        if current is None:
            # The common first write: create it as it is (a race with another writer goes the long way).
            try:
                created: Resource[SpecT] = await self._state.create(resource, owner=self.name)
            except AlreadyExistsError:
                current = await self._state.find(pointer)
            else:
                self._wrote(pointer)
                return created
        md = resource.metadata

        def desired(current: Resource[SpecT]) -> Resource[SpecT]:
            if current is resource:
                return resource
            cur = current.metadata
            if (
                current.spec == resource.spec
                and cur.labels == md.labels
                and cur.annotations == md.annotations
            ):
                return current  # already as wanted: no write
            return current.with_metadata(labels=md.labels, annotations=md.annotations).with_spec(
                resource.spec
            )

        return await self._converge(pointer, resource, desired, current)

    async def destroy(self, pointer: Pointer) -> None:
        """Destroy an owned output. Raises NotFoundError, OwnerConflictError, PendingFinalizersError."""
        self._check_write("destroy", pointer)
        await self._state.destroy(pointer, owner=self.name)
        self._metrics.writes += 1

    async def teardown(self, pointer: Pointer) -> bool:
        """Start tearing down an owned output; returns whether it can be destroyed now (no finalizers)."""
        self._check_write("tear down", pointer)
        ready = await self._state.teardown(pointer, owner=self.name)
        self._metrics.writes += 1
        return ready

    async def teardown_and_destroy(self, pointer: Pointer) -> bool:
        """Tear down an owned output and destroy it if no finalizers hold it; returns whether it is gone.

        Never waits: when finalizers remain, a `Controller` is woken by the runtime once they are all removed
        and its next reconcile (or cleanup) finishes the job; a `QController` declares its output type as a
        ``DESTROY_READY`` input (mapped to its keys) to get the same. An absent resource counts as gone.
        """
        self._check_write("tear down", pointer)
        try:
            ready = await self._state.teardown(pointer, owner=self.name)
            self._metrics.writes += 1
            if not ready:
                return False
            await self._state.destroy(pointer, owner=self.name)
            self._metrics.writes += 1
        except NotFoundError:
            return True
        return True

    async def add_finalizer(self, pointer: Pointer) -> Resource[Any]:
        """Put this controller's finalizer on a strong input, so its owner waits for our cleanup."""
        self._check_finalize("add a finalizer to", pointer)
        result = await self._state.add_finalizer(pointer, self.name)
        self._metrics.writes += 1
        return result

    async def remove_finalizer(self, pointer: Pointer) -> Resource[Any]:
        """Remove this controller's finalizer from a strong input (after cleaning up what depends on it)."""
        self._check_finalize("remove a finalizer from", pointer)
        result = await self._state.remove_finalizer(pointer, self.name)
        self._metrics.writes += 1
        return result

    # --- internals ----------

    async def _replace_torn_down(self, current: Resource[Any]) -> None:
        md = current.metadata
        pointer = current.pointer
        if md.owner == self.name and not md.finalizers:
            try:
                await self._state.destroy(pointer, owner=self.name)
            except NotFoundError:
                return
            self._metrics.writes += 1
            return
        raise PhaseConflictError(pointer, expected=Phase.RUNNING, actual=Phase.TEARING_DOWN)

    def _wrote(self, pointer: Pointer) -> None:
        self._metrics.writes += 1
        self.touched.add(pointer)

    def _check_write(self, action: str, pointer: Pointer) -> None:
        if not self._rules.can_write(pointer.namespace, pointer.type):
            raise UndeclaredAccessError(
                self.name,
                action,
                str(pointer),
                f"declare Output({pointer.type!r}, namespace={pointer.namespace!r})",
            )

    def _check_finalize(self, action: str, pointer: Pointer) -> None:
        if not self._rules.can_finalize(pointer.namespace, pointer.type, pointer.id):
            raise UndeclaredAccessError(
                self.name,
                action,
                str(pointer),
                "finalizers may only be put on inputs declared InputKind.STRONG",
            )


def _same_pointer(resource: Resource[SpecT], pointer: Pointer) -> Resource[SpecT]:
    md = resource.metadata  # compared field by field: building a Pointer per write is measurable
    if md.id != pointer.id or md.type != pointer.type or md.namespace != pointer.namespace:
        raise ValueError(f"a modify function for {pointer} returned a resource at {resource.pointer}")
    return resource
