"""Resource definitions: what a type is called, how its spec is built and shown, whether it holds secrets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, final

from ._metadata import Metadata
from ._resource import Resource, SpecT
from ._spec import is_frozen_model, is_sensitive_model

if TYPE_CHECKING:
    import builtins

# Plural, dotted, like cosi/Kubernetes: "VolumeStatuses.block.volumed.dev".
_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


@final
@dataclass(frozen=True, slots=True)
class PrintColumn:
    """A column of `volumed get` tables: a header and a dotted spec path (e.g. ``location.device``)."""

    name: str
    path: str

    def value(self, resource: Resource[Any]) -> str:
        """The column's text for ``resource`` ("" when a step of the path is missing)."""
        current: Any = resource.spec
        for step in self.path.split("."):
            current = current.get(step) if isinstance(current, dict) else getattr(current, step, None)
            if current is None:
                return ""
        value = getattr(current, "value", current)
        return str(value)


@final
@dataclass(frozen=True, slots=True)
class ResourceDefinition(Generic[SpecT]):
    """Describes a resource type: name, spec model, aliases, default namespace and table columns.

    ``sensitive`` is true exactly when the spec model derives from `SensitiveSpec`, so a secret type cannot be
    declared without redacted reprs.
    """

    type: str
    spec_model: builtins.type[SpecT]
    default_namespace: str
    aliases: tuple[str, ...] = ()
    print_columns: tuple[PrintColumn, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not _TYPE_NAME.match(self.type):
            raise ValueError(
                f"resource type {self.type!r} must be a plural dotted name "
                "like 'VolumeStatuses.block.volumed.dev'"
            )
        if not isinstance(self.spec_model, type) or not is_frozen_model(self.spec_model):
            raise TypeError(
                f"spec model of {self.type} must be a frozen pydantic model "
                "(derive from volumed.runtime.Spec)"
            )
        if not self.default_namespace:
            raise ValueError(f"resource type {self.type} needs a default namespace")
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "print_columns", tuple(self.print_columns))
        for alias in self.aliases:
            if not alias or not isinstance(alias, str):
                raise ValueError(f"aliases of {self.type} must be non-empty strings, got {alias!r}")

    @property
    def sensitive(self) -> bool:
        """Whether this type holds secrets (never shown unless a privileged caller asks)."""
        return is_sensitive_model(self.spec_model)

    @property
    def names(self) -> tuple[str, ...]:
        """Every name this type answers to: the type, its first dotted segment and the aliases."""
        short = self.type.split(".", 1)[0]
        return (self.type, short, *self.aliases)

    def new(self, id: str, spec: SpecT, *, namespace: str | None = None, **kwargs: Any) -> Resource[SpecT]:
        """Return a resource of this type (in the default namespace unless ``namespace`` is given)."""
        if not isinstance(spec, self.spec_model):
            raise TypeError(
                f"spec of {self.type} must be a {self.spec_model.__name__}, got {type(spec).__name__}"
            )
        return Resource(Metadata.new(namespace or self.default_namespace, self.type, id, **kwargs), spec)
