"""A registry of resource definitions, looked up by type name or alias (case-insensitive)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from pydantic import BaseModel

    from ._definition import ResourceDefinition


class UnknownResourceTypeError(LookupError):
    """Raised when a name is neither a registered type nor an alias of one (not a missing resource)."""


class DefinitionConflictError(ValueError):
    """Raised when registering a definition whose type or alias is already taken by another definition."""


@final
class ResourceRegistry:
    """Definitions by type and alias; the sqlite backend uses it to rebuild specs from JSON."""

    def __init__(self, definitions: Iterable[ResourceDefinition[Any]] = ()) -> None:
        self._by_type: dict[str, ResourceDefinition[Any]] = {}
        self._by_name: dict[str, ResourceDefinition[Any]] = {}
        for definition in definitions:
            self.register(definition)

    def register(self, definition: ResourceDefinition[Any]) -> None:
        """Add ``definition``; registering the same definition twice is a no-op."""
        existing = self._by_type.get(definition.type)
        if existing is not None:
            if existing == definition:
                return
            raise DefinitionConflictError(f"resource type {definition.type} is already registered")
        for name in definition.names:
            taken = self._by_name.get(name.lower())
            if taken is not None and taken.type != definition.type:
                raise DefinitionConflictError(
                    f"name {name!r} of {definition.type} is already used by {taken.type}"
                )
        self._by_type[definition.type] = definition
        for name in definition.names:
            self._by_name[name.lower()] = definition

    def get(self, name: str) -> ResourceDefinition[Any]:
        """Return the definition whose type or alias is ``name``."""
        definition = self._by_type.get(name) or self._by_name.get(name.lower())
        if definition is None:
            known = ", ".join(sorted(self._by_type)) or "none"
            raise UnknownResourceTypeError(f"unknown resource type {name!r} (registered: {known})")
        return definition

    def find(self, name: str) -> ResourceDefinition[Any] | None:
        """Return the definition for ``name``, or None."""
        return self._by_type.get(name) or self._by_name.get(name.lower())

    def spec_model(self, type_name: str) -> type[BaseModel]:
        """The spec model of ``type_name`` (exact type name)."""
        definition = self._by_type.get(type_name)
        if definition is None:
            raise UnknownResourceTypeError(f"no spec model registered for resource type {type_name!r}")
        return definition.spec_model

    def is_sensitive(self, type_name: str) -> bool:
        """Whether ``type_name`` is registered as sensitive (False for unknown types)."""
        definition = self._by_type.get(type_name)
        return definition is not None and definition.sensitive

    def __iter__(self) -> Iterator[ResourceDefinition[Any]]:
        return iter(sorted(self._by_type.values(), key=lambda d: d.type))

    def __len__(self) -> int:
        return len(self._by_type)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None
