"""LUKS2 token JSON in Talos' layouts: produce and parse, byte-for-byte as cryptsetup stores them."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._errors import InvalidTokenError

if TYPE_CHECKING:
    from ._provider import TokenJSON

KMS_TOKEN_TYPE = "sideroKMS"
"""``type`` of the token Talos stores next to a KMS-sealed key slot."""


def make_token(token_type: str, user_data: Mapping[str, Any]) -> TokenJSON:
    """Build a token in Talos' key order ``type, keyslots, UserData`` with an empty ``keyslots`` list.

    Talos imports the token with no key slot assigned; the token is tied to its slot by id (token id == slot).
    """
    return {"type": token_type, "keyslots": [], "UserData": dict(user_data)}


def token_user_data(token: Mapping[str, Any] | None, token_type: str, *, slot: int) -> Mapping[str, Any]:
    """Return the ``UserData`` object of ``token`` after checking it is a token of ``token_type``.

    Raises:
        InvalidTokenError: the token is missing, of another type, or has no ``UserData`` object.
    """
    if token is None:
        raise InvalidTokenError(f"slot {slot}: no LUKS2 token at token id {slot} (expected {token_type!r})")
    found = token.get("type")
    if found != token_type:
        raise InvalidTokenError(f"slot {slot}: token type is {found!r}, expected {token_type!r}")
    user_data = token.get("UserData")
    if not isinstance(user_data, Mapping):
        raise InvalidTokenError(f"slot {slot}: {token_type} token has no UserData object")
    return user_data


def token_bytes_field(user_data: Mapping[str, Any], name: str, *, token_type: str, slot: int) -> bytes:
    """Decode the standard-base64 field ``name`` of a token's ``UserData`` (how Go encodes ``[]byte``).

    Raises:
        InvalidTokenError: the field is missing, not a string, or not valid base64. The value is not quoted.
    """
    value = user_data.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidTokenError(f"slot {slot}: {token_type} token has no {name!r} string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidTokenError(
            f"slot {slot}: {token_type} token field {name!r} is not valid base64"
        ) from None


def make_kms_token(sealed: bytes) -> TokenJSON:
    """The ``sideroKMS`` token holding the KMS-sealed key: ``{"type":"sideroKMS","keyslots":[],
    "UserData":{"sealedData":"<base64>"}}``."""
    return make_token(KMS_TOKEN_TYPE, {"sealedData": base64.b64encode(sealed).decode("ascii")})


def parse_kms_token(token: Mapping[str, Any] | None, *, slot: int) -> bytes:
    """Return the sealed blob of a ``sideroKMS`` token.

    Raises:
        InvalidTokenError: the token is missing, not ``sideroKMS`` or its ``sealedData`` is not base64.
    """
    user_data = token_user_data(token, KMS_TOKEN_TYPE, slot=slot)
    return token_bytes_field(user_data, "sealedData", token_type=KMS_TOKEN_TYPE, slot=slot)


def token_to_json(token: Mapping[str, Any]) -> bytes:
    """Serialise a token compactly, as cryptsetup stores token JSON in the LUKS2 header (no spaces, key order
    kept, ``/`` not escaped)."""
    return json.dumps(token, separators=(",", ":"), ensure_ascii=True).encode("ascii")
