"""The read side of a controller's context: state reads narrowed to its declared inputs and outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import BaseModel

from ._errors import UndeclaredAccessError

if TYPE_CHECKING:
    import structlog

    from volumed.runtime.resource import IDQuery, Kind, LabelQuery, Pointer, Resource
    from volumed.runtime.state import State

    from ._access import AccessRules
    from ._metrics import ControllerMetrics

SpecT = TypeVar("SpecT", bound=BaseModel)


class ControllerReader:
    """Reads of the state limited to a controller's declared inputs and outputs.

    Every read of an undeclared kind (or of an id outside an id-restricted input) raises
    `UndeclaredAccessError`, so a controller's real dependencies are exactly what it declares — which is what
    wakes it and what the dependency graph shows. Passing a spec model (``get(ptr, MySpec)``) checks and types
    the result.
    """

    __slots__ = ("_logger", "_metrics", "_rules", "_state")

    def __init__(
        self,
        state: State,
        rules: AccessRules,
        metrics: ControllerMetrics,
        logger: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self._state = state
        self._rules = rules
        self._metrics = metrics
        self._logger = logger

    @property
    def name(self) -> str:
        """The controller's name (the owner stamped on its outputs, and its finalizer)."""
        return self._rules.name

    @property
    def logger(self) -> structlog.typing.FilteringBoundLogger:
        """A structlog logger with the controller's name bound."""
        return self._logger

    @overload
    async def get(self, pointer: Pointer) -> Resource[Any]: ...
    @overload
    async def get(self, pointer: Pointer, spec: type[SpecT]) -> Resource[SpecT]: ...
    async def get(self, pointer: Pointer, spec: type[BaseModel] | None = None) -> Resource[Any]:
        """The resource at ``pointer``. Raises NotFoundError, UndeclaredAccessError, TypeError (spec)."""
        self._check_read(pointer)
        self._metrics.reads += 1
        return _typed(await self._state.get(pointer), spec)

    @overload
    async def find(self, pointer: Pointer) -> Resource[Any] | None: ...
    @overload
    async def find(self, pointer: Pointer, spec: type[SpecT]) -> Resource[SpecT] | None: ...
    async def find(self, pointer: Pointer, spec: type[BaseModel] | None = None) -> Resource[Any] | None:
        """The resource at ``pointer``, or None when it does not exist."""
        self._check_read(pointer)
        self._metrics.reads += 1
        found = await self._state.find(pointer)
        return None if found is None else _typed(found, spec)

    @overload
    async def list(
        self, kind: Kind, *, labels: LabelQuery | None = None, ids: IDQuery | None = None
    ) -> list[Resource[Any]]: ...
    @overload
    async def list(
        self, kind: Kind, spec: type[SpecT], *, labels: LabelQuery | None = None, ids: IDQuery | None = None
    ) -> list[Resource[SpecT]]: ...
    async def list(
        self,
        kind: Kind,
        spec: type[BaseModel] | None = None,
        *,
        labels: LabelQuery | None = None,
        ids: IDQuery | None = None,
    ) -> list[Resource[Any]]:
        """Resources of ``kind`` (sorted by id); an id-restricted input lists only its declared ids."""
        try:
            allowed = self._rules.readable_ids(kind.namespace, kind.type)
        except KeyError:
            raise UndeclaredAccessError(
                self.name, "list", str(kind), "declare it as an Input or Output of the controller"
            ) from None
        self._metrics.reads += 1
        items = await self._state.list(kind, labels=labels, ids=ids)
        if allowed is not None:
            items = [r for r in items if r.metadata.id in allowed]
        if spec is not None:
            for item in items:
                _typed(item, spec)
        return items

    def _check_read(self, pointer: Pointer) -> None:
        if not self._rules.can_read(pointer.namespace, pointer.type, pointer.id):
            raise UndeclaredAccessError(
                self.name, "read", str(pointer), "declare it as an Input or Output of the controller"
            )


def _typed(resource: Resource[Any], spec: type[BaseModel] | None) -> Resource[Any]:
    if spec is not None and not isinstance(resource.spec, spec):
        raise TypeError(
            f"{resource.pointer} holds a {type(resource.spec).__name__}, not the {spec.__name__} asked for"
        )
    return resource
