"""The sqlite file layout and the conversions between rows and resources."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

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


def spec_json(spec: BaseModel) -> str:
    """How a spec is stored: JSON by field alias (validation reads aliases), bytes as base64.

    Computed fields are left out: they are derived again on reading, and a model that forbids extra input
    would refuse them.
    """
    computed = set(type(spec).model_computed_fields)
    return spec.model_dump_json(by_alias=True, exclude=computed or None)


def storable_spec_json(resource: Resource[Any]) -> str:
    """``resource``'s spec as stored, once it is known to read back as the same value.

    A row that cannot be read back would make the whole file refuse to open, so such a write is refused
    instead (e.g. NaN or infinite floats, which JSON stores as null). The reason names fields, never values.

    Raises:
        InvalidResourceError: the spec would not read back as it is.
    """
    spec = resource.spec
    model = type(spec)
    problem = None
    try:
        text = spec_json(spec)
        decoded = model.model_validate_json(text)
    except ValidationError as exc:
        problem = f"it would not read back: {validation_summary(exc)}"
    except ValueError as exc:  # e.g. a string pydantic cannot encode (a lone surrogate)
        problem = f"it cannot be encoded as JSON ({type(exc).__name__})"
    else:
        if decoded == spec:
            return text
        changed = [name for name in model.model_fields if getattr(decoded, name) != getattr(spec, name)]
        problem = (
            f"field(s) {', '.join(changed) or '?'} would read back as different values (NaN or infinity?)"
        )
    raise InvalidResourceError(f"spec of {resource.pointer} cannot be stored: {problem}", resource.pointer)


def validation_summary(error: ValidationError) -> str:
    """Where a validation failed and why, never the values (a non-sensitive spec may nest secrets)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in e['loc']) or 'value'}: {e['msg']}"
        for e in error.errors(include_input=False, include_url=False)
    )


def to_row(resource: Resource[Any]) -> Row:
    """The row storing ``resource`` (spec as `storable_spec_json`: raises InvalidResourceError)."""
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
        storable_spec_json(resource),
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
    except ValidationError as exc:
        raise InvalidResourceError(
            f"{where}: stored resource {pointer} is malformed: {validation_summary(exc)}"
        ) from None
    except (ValueError, TypeError) as exc:  # the metadata columns (no secrets there)
        raise InvalidResourceError(f"{where}: stored resource {pointer} is malformed: {exc}") from None
    return Resource(metadata, spec_value)
