"""The resource value: metadata plus a typed, frozen pydantic spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

from pydantic import BaseModel

from volumed.runtime._frozen import draft_class

from ._metadata import Metadata
from ._spec import is_frozen_model

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._pointer import Kind, Pointer

SpecT = TypeVar("SpecT", bound=BaseModel)
OtherSpecT = TypeVar("OtherSpecT", bound=BaseModel)


@final
@dataclass(frozen=True, slots=True, repr=False)
class Resource(Generic[SpecT]):
    """A resource: metadata then spec (equality compares them in that order).

    Resources are immutable and shared: the state hands the same object to every reader, event and watcher.
    Derive a changed resource with `with_spec` / `with_metadata`; the state assigns versions and times.
    """

    metadata: Metadata
    spec: SpecT

    def __post_init__(self) -> None:
        if not isinstance(self.metadata, Metadata):
            raise TypeError(f"resource metadata must be a Metadata, got {type(self.metadata).__name__}")
        _check_spec(self.spec, self.metadata)

    @classmethod
    def new(
        cls,
        namespace: str,
        type: str,
        id: str,
        spec: SpecT,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Resource[SpecT]:
        """Return a resource ready to be created."""
        metadata = Metadata.new(namespace, type, id, labels=labels, annotations=annotations)
        if spec.__class__ not in _VALID_SPEC_TYPES:
            _check_spec(spec, metadata)
        return trusted_resource(metadata, spec)

    @property
    def pointer(self) -> Pointer:
        """This resource's address."""
        return self.metadata.pointer

    @property
    def kind(self) -> Kind:
        """This resource's namespace and type."""
        return self.metadata.kind

    @property
    def id(self) -> str:
        """This resource's id."""
        return self.metadata.id

    @property
    def version(self) -> int:
        """The stored version (0 before create)."""
        return self.metadata.version

    def with_spec(self, spec: OtherSpecT) -> Resource[OtherSpecT]:
        """Return a copy carrying ``spec``."""
        if spec.__class__ not in _VALID_SPEC_TYPES:
            _check_spec(spec, self.metadata)
        return trusted_resource(self.metadata, spec)

    def with_metadata(self, **changes: Any) -> Resource[SpecT]:
        """Return a copy whose metadata has ``changes`` (e.g. ``labels={...}``)."""
        return Resource(self.metadata.replace(**changes), self.spec)

    def __repr__(self) -> str:
        md = self.metadata
        return (
            f"Resource({md.namespace}/{md.type}/{md.id} v{md.version} owner={md.owner!r} "
            f"phase={md.phase.value} spec={self.spec!r})"
        )


_VALID_SPEC_TYPES: set[type[Any]] = set()
"""Spec classes already checked to be frozen pydantic models (the check is a hot-path cost otherwise)."""


def _check_spec(spec: object, metadata: Metadata) -> None:
    spec_type = type(spec)
    if spec_type in _VALID_SPEC_TYPES:
        return
    if not isinstance(spec, BaseModel):
        raise TypeError(f"spec of {metadata.pointer} must be a pydantic model, got {spec_type.__name__}")
    if not is_frozen_model(type(spec)):
        raise TypeError(
            f"spec model {spec_type.__name__} of {metadata.pointer} must be frozen "
            "(derive from volumed.runtime.Spec or set model_config = ConfigDict(frozen=True))"
        )
    _VALID_SPEC_TYPES.add(spec_type)


_ResourceDraft = draft_class(Resource)
_new = object.__new__


def trusted_resource(metadata: Metadata, spec: SpecT) -> Resource[SpecT]:
    """A resource from parts the state has already validated (skips the checks of ``__post_init__``)."""
    resource: Any = _new(_ResourceDraft)
    resource.metadata = metadata
    resource.spec = spec
    resource.__class__ = Resource
    return resource  # type: ignore[no-any-return]
