import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from volumed.keys import InvalidTokenError, make_kms_token, make_token, parse_kms_token, token_to_json


def test_kms_token_layout_is_talos_byte_for_byte() -> None:
    sealed = bytes(range(60)) + b"\xff\xfe"
    expected = (
        '{"type":"sideroKMS","keyslots":[],"UserData":{"sealedData":"'
        + base64.b64encode(sealed).decode()
        + '"}}'
    ).encode()
    assert token_to_json(make_kms_token(sealed)) == expected


@given(st.binary(min_size=1, max_size=200))
def test_kms_token_round_trip(sealed: bytes) -> None:
    token = json.loads(token_to_json(make_kms_token(sealed)))
    assert parse_kms_token(token, slot=0) == sealed


def test_generic_token_key_order() -> None:
    assert list(make_token("talos-tpm2", {"a": 1})) == ["type", "keyslots", "UserData"]


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "slot 3: no LUKS2 token at token id 3 (expected 'sideroKMS')"),
        ({"type": "talos-tpm2", "UserData": {}}, "slot 3: token type is 'talos-tpm2', expected 'sideroKMS'"),
        ({"type": "sideroKMS"}, "slot 3: sideroKMS token has no UserData object"),
        ({"type": "sideroKMS", "UserData": {}}, "slot 3: sideroKMS token has no 'sealedData' string"),
        (
            {"type": "sideroKMS", "UserData": {"sealedData": "not base64!"}},
            "slot 3: sideroKMS token field 'sealedData' is not valid base64",
        ),
        (
            {"type": "sideroKMS", "UserData": {"sealedData": "é"}},
            "slot 3: sideroKMS token field 'sealedData' is not valid base64",
        ),
    ],
)
def test_bad_tokens(token: dict[str, object] | None, message: str) -> None:
    with pytest.raises(InvalidTokenError) as info:
        parse_kms_token(token, slot=3)
    assert str(info.value) == message
