"""The wire format: newline-delimited JSON objects, resources as ``{metadata: {...}, spec: {...}}``.

Requests (client -> server, one line): ``{"op": "get"|"watch", "type": NAME, "id": ID|null,
"namespace": NS|null}``. Answers (server -> client):

- an error, then the connection closes: ``{"error": {"code": CODE, "message": TEXT}}``;
- ``get``: ``{"type": TYPE-INFO, "items": [RESOURCE, ...]}``;
- ``watch``: ``{"type": TYPE-INFO}``, then one line per event: ``{"event": "created"|"updated"|"destroyed",
  "resource": RESOURCE}``, ``{"event": "bootstrapped"}`` after the current items, and a last
  ``{"event": "errored", "message": TEXT}`` if the server ends the watch.

Specs are dumped by pydantic in JSON mode, so enums are their values, times ISO 8601 and pydantic secret
fields ``**********`` (see ``_serialize``). This module is the client's half: plain stdlib, so that
`volumed get` starts fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, final

from ._errors import ApiProtocolError

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
