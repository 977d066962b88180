"""The sqlite file layout and the conversions between rows and resources."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from volumed.runtime.resource import FrozenMap, Metadata, Phase, Resource, UnknownResourceTypeError

from .._errors import InvalidResourceError

if TYPE_CHECKING:
    from volumed.runtime.resource import ResourceRegistry

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    namespace   TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    owner       TEXT    NOT NULL,
    phase       TEXT    NOT NULL,
    labels      TEXT    NOT NULL,
    annotations TEXT    NOT NULL,
    finalizers  TEXT    NOT NULL,
    created     TEXT    NOT NULL,
    updated     TEXT    NOT NULL,
    spec        TEXT    NOT NULL,
    PRIMARY KEY (namespace, type, id)
) WITHOUT ROWID
"""

COLUMNS = (
    "namespace, type, id, version, owner, phase, labels, annotations, finalizers, created, updated, spec"
)

Row = tuple[str, str, str, int, str, str, str, str, str, str, str, str]


def to_row(resource: Resource[Any]) -> Row:
    """The row storing ``resource`` (spec as JSON; bytes as base64)."""
    md = resource.metadata
    return (
        md.namespace,
        md.type,
        md.id,
        md.version,
        md.owner,
        md.phase.value,
        json.dumps(md.labels.to_dict(), sort_keys=True),
        json.dumps(md.annotations.to_dict(), sort_keys=True),
        json.dumps(list(md.finalizers)),
        md.created.isoformat(),
        md.updated.isoformat(),
        resource.spec.model_dump_json(),
    )


def from_row(row: Row, registry: ResourceRegistry, where: str) -> Resource[Any]:
    """Rebuild a resource from its row, its spec through the type's registered model."""
    (
        namespace,
        type_name,
        rid,
        version,
        owner,
        phase,
        labels,
        annotations,
        finalizers,
        created,
        updated,
        spec,
    ) = row
    pointer = f"{namespace}/{type_name}/{rid}"
    try:
        model = registry.spec_model(type_name)
    except UnknownResourceTypeError:
        raise InvalidResourceError(
            f"{where}: stored resource {pointer} has type {type_name}, which is not in the registry "
            "(register its ResourceDefinition before opening the state)"
        ) from None
    try:
        metadata = Metadata(
            namespace,
            type_name,
            rid,
            version=version,
            owner=owner,
            labels=FrozenMap(json.loads(labels)),
            annotations=FrozenMap(json.loads(annotations)),
            finalizers=tuple(json.loads(finalizers)),
            phase=Phase(phase),
            created=datetime.fromisoformat(created),
            updated=datetime.fromisoformat(updated),
        )
        spec_value = model.model_validate_json(spec)
    except (ValueError, TypeError) as exc:
        # The text of a validation error may quote stored values; a sensitive spec must not leak through it.
        detail = type(exc).__name__ if registry.is_sensitive(type_name) else str(exc)
        raise InvalidResourceError(f"{where}: stored resource {pointer} is malformed: {detail}") from None
    return Resource(metadata, spec_value)
