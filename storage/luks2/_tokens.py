"""Token validation as cryptsetup's ``token import`` does it."""

from __future__ import annotations

import json
from typing import Any

from ._errors import InvalidMetadataError
from ._metadata import Metadata, Token
from ._validate import MAX_TOKENS, RESERVED_TOKEN_PREFIX

BUILTIN_TOKEN_TYPES = ("luks2-keyring",)


def check_token_id(token_id: int) -> None:
    if not 0 <= token_id < MAX_TOKENS:
        raise InvalidMetadataError(f"token id {token_id} is out of range 0..{MAX_TOKENS - 1}")


def parse_token(source: str | bytes | dict[str, Any], meta: Metadata) -> Token:
    """A Token from JSON text or a dict; InvalidMetadataError naming the broken rule."""
    if isinstance(source, dict):
        body = source
    else:
        try:
            body = json.loads(source)
        except (ValueError, UnicodeDecodeError):
            raise InvalidMetadataError("token JSON is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidMetadataError("token JSON must be an object")
    kind = body.get("type")
    if not isinstance(kind, str) or not kind:
        raise InvalidMetadataError("token JSON needs a non-empty string 'type'")
    if kind.startswith(RESERVED_TOKEN_PREFIX) and kind not in BUILTIN_TOKEN_TYPES:
        raise InvalidMetadataError(f"token type {kind!r}: the prefix {RESERVED_TOKEN_PREFIX!r} is reserved")
    if kind == "luks2-keyring" and not isinstance(body.get("key_description"), str):
        raise InvalidMetadataError("luks2-keyring token needs a string 'key_description'")
    slots = body.get("keyslots")
    if not isinstance(slots, list) or not all(
        isinstance(s, str) and s.isascii() and s.isdigit() for s in slots
    ):
        raise InvalidMetadataError("token JSON needs 'keyslots', an array of key slot ids as strings")
    for s in slots:
        if int(s) not in meta.keyslots:
            raise InvalidMetadataError(f"token refers to key slot {s}, which does not exist")
    return Token(type=kind, keyslots=tuple(int(s) for s in slots), body=body)


def export_token(token: Token) -> str:
    """The token's JSON, compact like cryptsetup's on-disk form."""
    return json.dumps(token.to_dict(), separators=(",", ":"), ensure_ascii=False)
