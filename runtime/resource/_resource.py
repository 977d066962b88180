"""The resource value: metadata plus a typed, frozen pydantic spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

from pydantic import BaseModel

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
        if not isinstance(self.spec, BaseModel):
            raise TypeError(
                f"spec of {self.metadata.pointer} must be a pydantic model, got {type(self.spec).__name__}"
            )
        if not is_frozen_model(type(self.spec)):
            raise TypeError(
                f"spec model {type(self.spec).__name__} of {self.metadata.pointer} must be frozen "
                "(derive from volumed.runtime.Spec or set model_config = ConfigDict(frozen=True))"
            )

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
        return cls(Metadata.new(namespace, type, id, labels=labels, annotations=annotations), spec)

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
        return Resource(self.metadata, spec)

    def with_metadata(self, **changes: Any) -> Resource[SpecT]:
        """Return a copy whose metadata has ``changes`` (e.g. ``labels={...}``)."""
        return Resource(self.metadata.replace(**changes), self.spec)

    def __repr__(self) -> str:
        md = self.metadata
        return (
            f"Resource({md.namespace}/{md.type}/{md.id} v{md.version} owner={md.owner!r} "
            f"phase={md.phase.value} spec={self.spec!r})"
        )


def trusted_resource(metadata: Metadata, spec: SpecT) -> Resource[SpecT]:
    """A resource from parts the state has already validated (skips the checks of ``__post_init__``)."""
    new: Resource[SpecT] = object.__new__(Resource)
    object.__setattr__(new, "metadata", metadata)
    object.__setattr__(new, "spec", spec)
    return new
