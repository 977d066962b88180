"""The wire format: newline-delimited JSON objects, resources as ``{metadata: {...}, spec: {...}}``.

Requests (client -> server, one line): ``{"op": "get"|"watch", "type": NAME, "id": ID|null,
"namespace": NS|null}``, or ``{"op": "stats"|"graph"}`` (no other member). Answers (server -> client):

- an error, then the connection closes: ``{"error": {"code": CODE, "message": TEXT}}``;
- ``get``: ``{"type": TYPE-INFO, "items": [RESOURCE, ...]}``;
- ``watch``: ``{"type": TYPE-INFO}``, then one line per event: ``{"event": "created"|"updated"|"destroyed",
  "resource": RESOURCE}``, ``{"event": "bootstrapped"}`` after the current items, and a last
  ``{"event": "errored", "message": TEXT}`` if the server ends the watch;
- ``stats``: ``{"controllers": [{"name": NAME, "reconciles": N, "errors": N, "wakeups": N, "reads": N,
  "writes": N, "queue_length": N, "failure_streak": N, "reconcile_seconds": S, "reconcile_seconds_max": S,
  "reconciles_ended": N, "duration_buckets": [[LE, N], ...]}, ...]}`` (buckets cumulative);
- ``graph``: ``{"controllers": [{"name": NAME, "inputs": [{"namespace", "type", "kind", "id"}], "outputs":
  [{"namespace", "type", "kind"}]}, ...], "dot": TEXT, "mermaid": TEXT}``.

Specs are dumped by pydantic in JSON mode, so enums are their values, times ISO 8601 and pydantic secret
fields ``**********`` (see ``_serialize``). This module is the client's half: plain stdlib, so that
`volumed get` starts fast.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final, final

from ._errors import ApiProtocolError

WireObject = dict[str, Any]


def encode(message: WireObject) -> bytes:
    """One message as a line of compact JSON (newlines inside strings are escaped by JSON itself)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


MAX_DEPTH: Final = 64
"""Deepest nesting of arrays and objects the server accepts in a request (requests are flat)."""

_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
"""A JSON string (skipped whole, so brackets inside it do not count) or one bracket."""


def _check_depth(line: bytes, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth`` before ``json`` recurses into it (it fails past Python's
    recursion limit with a RecursionError, which the server took for an internal error)."""
    if line.count(b"[") + line.count(b"{") <= max_depth:
        return
    depth = 0
    for match in _STRUCTURE.finditer(line):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise ApiProtocolError(f"JSON nested deeper than {max_depth} levels")
        elif token in (b"]", b"}"):
            depth -= 1


# Digits of an integer in a message: far more than any field takes, far fewer than Python converts (4300).
MAX_INTEGER_DIGITS: Final = 64


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ApiProtocolError(f"not a JSON line: an integer longer than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def decode(line: bytes, *, max_depth: int | None = None) -> WireObject:
    """Parse one line into a JSON object; anything else is an `ApiProtocolError`.

    Args:
        max_depth: refuse arrays and objects nested deeper (the server bounds requests with `MAX_DEPTH`; the
            client leaves answers unscanned, and nesting past what ``json`` can recurse is refused anyway).
    """
    if max_depth is not None:
        _check_depth(line, max_depth)
    try:
        message = json.loads(line, parse_int=_parse_int)
    except RecursionError:
        raise ApiProtocolError("not a JSON line: nested too deeply") from None
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
