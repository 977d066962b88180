"""The wire format: newline-delimited JSON objects, resources as ``{metadata: {...}, spec: {...}}``.

Requests (client -> server, one line): ``{"op": "get"|"watch", "type": NAME, "id": ID|null,
"namespace": NS|null}``. Answers (server -> client):

- an error, then the connection closes: ``{"error": {"code": CODE, "message": TEXT}}``;
- ``get``: ``{"type": TYPE-INFO, "items": [RESOURCE, ...]}``;
- ``watch``: ``{"type": TYPE-INFO}``, then one line per event: ``{"event": "created"|"updated"|"destroyed",
  "resource": RESOURCE}``, ``{"event": "bootstrapped"}`` after the current items, and a last
  ``{"event": "errored", "message": TEXT}`` if the server ends the watch.

Specs are dumped by pydantic in JSON mode, so enums are their values, times ISO 8601 and pydantic secret
fields ``**********``; sensitive types never reach this module's dump (see `holds_secrets`).
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, final

from pydantic import BaseModel

from volumed.runtime import SensitiveSpec

from ._errors import ApiProtocolError

if TYPE_CHECKING:
    from volumed.runtime import Resource, ResourceDefinition

WireObject = dict[str, Any]


def encode(message: WireObject) -> bytes:
    """One message as a line of compact JSON (newlines inside strings are escaped by JSON itself)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode(line: bytes) -> WireObject:
    """Parse one line into a JSON object; anything else is an `ApiProtocolError`."""
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, ValueError) as error:
        raise ApiProtocolError(f"not a JSON line: {error}") from None
    if not isinstance(message, dict):
        raise ApiProtocolError(f"expected a JSON object, got {type(message).__name__}")
    return message


def holds_secrets(model: type[BaseModel]) -> bool:
    """Whether ``model`` is a `SensitiveSpec` or has one anywhere in its field types (checked statically).

    A spec nesting a sensitive model would dump the nested secrets in clear, so such types are refused
    exactly like sensitive ones.
    """
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


@final
@dataclass(frozen=True, slots=True)
class TypeInfo:
    """A resource type as the server described it (the client has no registry of its own)."""

    type: str
    namespace: str
    aliases: tuple[str, ...]
    print_columns: tuple[tuple[str, str], ...]
    """(header, dotted spec path) pairs, in order."""

    @classmethod
    def from_wire(cls, message: object) -> TypeInfo:
        """Parse the ``type`` member of an answer; raises `ApiProtocolError` when it is malformed."""
        try:
            if not isinstance(message, dict):
                raise TypeError("not an object")
            columns = tuple((str(c["name"]), str(c["path"])) for c in message["print_columns"])
            return cls(
                type=str(message["type"]),
                namespace=str(message["namespace"]),
                aliases=tuple(str(a) for a in message["aliases"]),
                print_columns=columns,
            )
        except (KeyError, TypeError) as error:
            raise ApiProtocolError(f"malformed type description from the server: {error}") from None
