"""The server's half of the wire format: resources and definitions as JSON objects, and the secret check."""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretBytes, SecretStr

from volumed.runtime import SensitiveSpec

if TYPE_CHECKING:
    from volumed.runtime import Resource, ResourceDefinition

    from ._wire import WireObject


_HOLDS_SECRETS: dict[type[BaseModel], bool] = {}


def holds_secrets(model: type[BaseModel]) -> bool:
    """Whether ``model`` is a `SensitiveSpec` or has one anywhere in its field types (checked statically).

    A spec nesting a sensitive model would dump the nested secrets in clear, so such types are refused
    exactly like sensitive ones. Cached per model: the server asks for every resource it sends.
    """
    known = _HOLDS_SECRETS.get(model)
    if known is None:
        known = _HOLDS_SECRETS[model] = _nests_sensitive_model(model)
    return known


def _nests_sensitive_model(model: type[BaseModel]) -> bool:
    seen: set[type[BaseModel]] = set()

    def visit(annotation: object) -> bool:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if issubclass(annotation, SensitiveSpec):
                return True
            if annotation in seen:
                return False
            seen.add(annotation)
            return any(visit(field.annotation) for field in annotation.model_fields.values())
        return any(visit(argument) for argument in typing.get_args(annotation))

    return visit(model)


def value_holds_secrets(value: object) -> bool:
    """Whether ``value`` holds a `SensitiveSpec`, SecretStr or SecretBytes anywhere: in a model's fields (and
    extras), a dict's keys and values, a list's, tuple's or set's items.

    The static check (`holds_secrets`) cannot see into a field typed ``Any`` or ``object``: a plugin's
    non-sensitive spec holding a SensitiveSpec there was served in clear. Walked for every resource sent.
    """
    seen: set[int] = set()
    pending: list[object] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, (SensitiveSpec, SecretStr, SecretBytes)):
            return True
        if isinstance(item, (str, bytes, int, float, bool)) or item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, BaseModel):
            pending += [getattr(item, name, None) for name in type(item).model_fields]
            pending += (item.model_extra or {}).values()
        elif isinstance(item, dict):
            pending += [*item.keys(), *item.values()]
        elif isinstance(item, (list, tuple, set, frozenset)):
            pending += item
    return False


def resource_to_wire(resource: Resource[Any]) -> WireObject:
    """A resource as the API shows it (metadata first, then the spec in pydantic's JSON mode)."""
    metadata = resource.metadata
    return {
        "metadata": {
            "namespace": metadata.namespace,
            "type": metadata.type,
            "id": metadata.id,
            "version": metadata.version,
            "owner": metadata.owner,
            "phase": metadata.phase.value,
            "created": metadata.created.isoformat(),
            "updated": metadata.updated.isoformat(),
            "labels": dict(metadata.labels),
            "annotations": dict(metadata.annotations),
            "finalizers": list(metadata.finalizers),
        },
        "spec": resource.spec.model_dump(mode="json"),
    }


def definition_to_wire(definition: ResourceDefinition[Any], namespace: str) -> WireObject:
    """What a client needs to show a type: its name, the namespace served and the table columns."""
    return {
        "type": definition.type,
        "namespace": namespace,
        "aliases": list(definition.aliases),
        "print_columns": [{"name": c.name, "path": c.path} for c in definition.print_columns],
    }
