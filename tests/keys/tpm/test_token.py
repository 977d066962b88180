"""The ``talos-tpm2`` token: Talos' field names and encodings, round trip, and malformed tokens."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from volumed.keys import InvalidTokenError, token_to_json
from volumed.keys.tpm import (
    SealedKey,
    UKIFiles,
    UnsupportedPolicyError,
    make_tpm_token,
    parse_tpm_token,
    pcr_policy,
    signed_pcr_policy,
)

SRK_NAME = bytes.fromhex("0022000b") + bytes(range(32))
SEALED = SealedKey(
    private=b"\x00\x04priv",
    public=b"\x00\x03pub",
    srk_name=SRK_NAME,
    policy_digest=b"\x11" * 32,
    policy=pcr_policy([7, 0]),
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def token() -> dict[str, Any]:
    return make_tpm_token(SEALED, slot=2)


def test_token_layout_is_talos() -> None:
    assert token() == {
        "type": "talos-tpm2",
        "keyslots": [],
        "UserData": {
            "keyslots": [2],
            "sealed_blob_private": b64(SEALED.private),
            "sealed_blob_public": b64(SEALED.public),
            "pcrs": [0, 7],
            "pubkey_pcrs": [],
            "alg": "sha256",
            "encryption_version": "1",
            "policy_hash": b64(SEALED.policy_digest),
            "key_name": b64(SRK_NAME),
        },
    }
    assert list(token()["UserData"]) == [
        "keyslots",
        "sealed_blob_private",
        "sealed_blob_public",
        "pcrs",
        "pubkey_pcrs",
        "alg",
        "encryption_version",
        "policy_hash",
        "key_name",
    ]


def test_token_round_trips_through_json_text() -> None:
    text = token_to_json(token())
    assert text.startswith(b'{"type":"talos-tpm2","keyslots":[],"UserData":{"keyslots":[2],')
    assert parse_tpm_token(json.loads(text), slot=2) == SEALED


def test_go_null_pubkey_pcrs_reads_as_empty() -> None:
    data = token()
    data["UserData"]["pubkey_pcrs"] = None
    assert parse_tpm_token(data, slot=2) == SEALED


def test_missing_token_is_named() -> None:
    with pytest.raises(InvalidTokenError, match="slot 2: no LUKS2 token at token id 2"):
        parse_tpm_token(None, slot=2)


def test_other_token_type_is_named() -> None:
    with pytest.raises(InvalidTokenError, match="token type is 'sideroKMS'"):
        parse_tpm_token({"type": "sideroKMS", "keyslots": [], "UserData": {}}, slot=2)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sealed_blob_private", None, "no 'sealed_blob_private' string"),
        ("sealed_blob_public", "not base64!", "'sealed_blob_public' is not valid base64"),
        ("key_name", b64(b"\x00\x05abc"), "key_name is not a marshalled TPM2B_NAME"),
        ("pcrs", "7", "'pcrs' is not a list of integers"),
        ("pcrs", [True], "'pcrs' is not a list of integers"),
        ("pubkey_pcrs", [11.0], "'pubkey_pcrs' is not a list of integers"),
        ("alg", 256, "'alg' is not a string"),
    ],
)
def test_malformed_fields_are_named_without_their_value(field: str, value: object, message: str) -> None:
    data = token()
    if value is None:
        del data["UserData"][field]
    else:
        data["UserData"][field] = value
    with pytest.raises(InvalidTokenError, match=message) as caught:
        parse_tpm_token(data, slot=2)
    assert b64(SEALED.private) not in str(caught.value)


def test_signed_policy_token_reads_the_given_files() -> None:
    data = token()
    data["UserData"]["pubkey_pcrs"] = [11]
    files = UKIFiles(public_key=Path("/k.pem"), signature=Path("/s.json"))
    policy = parse_tpm_token(data, slot=2, files=files).policy
    assert policy == signed_pcr_policy([0, 7], files)


def test_other_signed_pcrs_are_unsupported() -> None:
    data = token()
    data["UserData"]["pubkey_pcrs"] = [7]
    with pytest.raises(UnsupportedPolicyError, match=r"slot 2: .*signed policy over PCRs \[7\]"):
        parse_tpm_token(data, slot=2)


def test_pre_112_talos_token_is_signed_pcr11_and_pcr7() -> None:
    data = token()
    del data["UserData"]["encryption_version"]
    data["UserData"]["pcrs"] = [11]
    assert parse_tpm_token(data, slot=2).policy == signed_pcr_policy([7])


def test_talos_token_without_pcrs_is_signed_pcr11_alone() -> None:
    sealed = SealedKey(
        private=SEALED.private,
        public=SEALED.public,
        srk_name=SRK_NAME,
        policy_digest=SEALED.policy_digest,
        policy=signed_pcr_policy([]),
    )
    data = make_tpm_token(sealed, slot=2)
    assert "pcrs" not in data["UserData"]  # Go's omitempty
    assert data["UserData"]["pubkey_pcrs"] == [11]
    assert parse_tpm_token(data, slot=2).policy == signed_pcr_policy([])


def test_sealed_key_repr_shows_no_blobs() -> None:
    text = repr(SEALED)
    assert "private=<6 bytes>" in text
    assert "priv" not in text.replace("private", "")
