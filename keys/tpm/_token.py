"""The ``talos-tpm2`` LUKS2 token: Talos' field names and encodings, to and from :class:`SealedKey`."""

from __future__ import annotations

import base64
import struct
from typing import TYPE_CHECKING, Any

from .._errors import InvalidTokenError
from .._tokens import make_token, token_bytes_field, token_user_data
from ._errors import UnsupportedPolicyError
from ._pcr import PCR_BANK
from ._policy import policy_from_token_fields
from ._sealing import SealedKey
from ._uki import DEFAULT_UKI_FILES, UKIFiles

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .._provider import TokenJSON

TPM_TOKEN_TYPE = "talos-tpm2"
"""``type`` of the token Talos stores next to a TPM-sealed key slot."""

ENCRYPTION_VERSION = "1"
"""Talos' token schema errata marker: ``pcrs`` lists exactly the PCRs bound by value (tokens without it come
from Talos < 1.12; those with ``pcrs`` [11] are bound to PCR 7 besides the signed PCR 11 policy)."""


def make_tpm_token(sealed: SealedKey, *, slot: int) -> TokenJSON:
    """The token for ``sealed`` in slot ``slot``, with Talos' ``UserData`` fields in Talos' order.

    Byte fields are standard base64 (Go's ``[]byte``); ``key_name``, ``sealed_blob_*`` are the marshalled
    ``TPM2B_*`` structures, ``policy_hash`` the raw digest. ``pcrs`` is left out when empty (Go's
    ``omitempty``); ``pubkey_pcrs`` is [11] for Talos' signed policy, [] for the PCR-only extension.
    """

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    user_data: dict[str, Any] = {
        "keyslots": [slot],
        "sealed_blob_private": b64(sealed.private),
        "sealed_blob_public": b64(sealed.public),
    }
    if sealed.policy.pcrs:  # Go: `json:"pcrs,omitempty"`
        user_data["pcrs"] = list(sealed.policy.pcrs)
    user_data.update(
        {
            "pubkey_pcrs": list(sealed.policy.pubkey_pcrs),
            "alg": PCR_BANK,
            "encryption_version": ENCRYPTION_VERSION,
            "policy_hash": b64(sealed.policy_digest),
            "key_name": b64(sealed.srk_name),
        }
    )
    return make_token(TPM_TOKEN_TYPE, user_data)


def parse_tpm_token(
    token: Mapping[str, Any] | None, *, slot: int, files: UKIFiles = DEFAULT_UKI_FILES
) -> SealedKey:
    """Read a ``talos-tpm2`` token back into a :class:`SealedKey`; a signed policy reads ``files``.

    Raises:
        InvalidTokenError: missing, another type, a missing or malformed field (named, value not quoted).
        UnsupportedPolicyError: another PCR bank, signed PCRs other than [11].
    """
    user_data = token_user_data(token, TPM_TOKEN_TYPE, slot=slot)

    def field(name: str) -> bytes:
        return token_bytes_field(user_data, name, token_type=TPM_TOKEN_TYPE, slot=slot)

    private = field("sealed_blob_private")
    public = field("sealed_blob_public")
    policy_digest = field("policy_hash")
    srk_name = field("key_name")
    if len(srk_name) < 2 or struct.unpack_from(">H", srk_name)[0] != len(srk_name) - 2:
        raise InvalidTokenError(
            f"slot {slot}: {TPM_TOKEN_TYPE} token key_name is not a marshalled TPM2B_NAME"
        )
    pcrs = _int_list(user_data, "pcrs", slot=slot, required=False)
    pubkey_pcrs = _int_list(user_data, "pubkey_pcrs", slot=slot, required=False)
    alg = _string(user_data, "alg", slot=slot, default="")
    version = _string(user_data, "encryption_version", slot=slot, default="")
    try:
        policy = policy_from_token_fields(
            pcrs=pcrs, pubkey_pcrs=pubkey_pcrs, alg=alg, encryption_version=version, files=files
        )
    except UnsupportedPolicyError as exc:
        raise UnsupportedPolicyError(f"slot {slot}: {exc}") from None
    return SealedKey(
        private=private, public=public, srk_name=srk_name, policy_digest=policy_digest, policy=policy
    )


def _int_list(user_data: Mapping[str, Any], name: str, *, slot: int, required: bool) -> list[int]:
    value = user_data.get(name)
    if value is None and not required:
        return []  # Go marshals a nil slice as null, and leaves an empty omitempty field out
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise InvalidTokenError(
            f"slot {slot}: {TPM_TOKEN_TYPE} token field {name!r} is not a list of integers"
        )
    return list(value)


def _string(user_data: Mapping[str, Any], name: str, *, slot: int, default: str) -> str:
    value = user_data.get(name, default)
    if not isinstance(value, str):
        raise InvalidTokenError(f"slot {slot}: {TPM_TOKEN_TYPE} token field {name!r} is not a string")
    return value
