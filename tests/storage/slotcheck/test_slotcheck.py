from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from volumed.storage.slotcheck import (
    SLOT_CHECK_TOKEN_TYPE,
    SlotCheckError,
    fingerprint_matches,
    make_slot_check_token,
    parse_slot_check_token,
    slot_fingerprint,
)

KEY = bytes(range(64))
SLOT = {"type": "luks2", "kdf": {"type": "argon2id", "salt": "c2FsdA=="}, "area": {"offset": "32768"}}


def test_fingerprint_depends_on_every_input() -> None:
    base = slot_fingerprint(KEY, 1, SLOT, b"secret")
    assert len(base) == 32
    assert slot_fingerprint(KEY, 1, SLOT, b"secret") == base
    assert slot_fingerprint(KEY[::-1], 1, SLOT, b"secret") != base
    assert slot_fingerprint(KEY, 2, SLOT, b"secret") != base
    assert slot_fingerprint(KEY, 1, SLOT, b"secreT") != base
    reenrolled = {**SLOT, "kdf": {"type": "argon2id", "salt": "b3RoZXI="}}
    assert slot_fingerprint(KEY, 1, reenrolled, b"secret") != base


def test_missing_fingerprint_never_matches() -> None:
    assert not fingerprint_matches(None, b"x" * 32)
    assert fingerprint_matches(b"x" * 32, b"x" * 32)


@given(st.dictionaries(st.integers(0, 31), st.binary(min_size=32, max_size=32), max_size=32))
def test_token_round_trip(fingerprints: dict[int, bytes]) -> None:
    token = make_slot_check_token(fingerprints)
    assert token["type"] == SLOT_CHECK_TOKEN_TYPE
    assert token["keyslots"] == []
    assert parse_slot_check_token(token) == fingerprints


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "sideroKMS"}, "not 'volumed-slot-check'"),
        ({"type": SLOT_CHECK_TOKEN_TYPE, "version": 2, "fingerprints": {}}, "version 2"),
        ({"type": SLOT_CHECK_TOKEN_TYPE, "version": 1}, "no 'fingerprints'"),
        (
            {"type": SLOT_CHECK_TOKEN_TYPE, "version": 1, "fingerprints": {"32": "AA=="}},
            "'32' is not a key slot",
        ),
        ({"type": SLOT_CHECK_TOKEN_TYPE, "version": 1, "fingerprints": {"3": "!!"}}, "slot 3 is not 32"),
        (
            {
                "type": SLOT_CHECK_TOKEN_TYPE,
                "version": 1,
                "fingerprints": {"3": base64.b64encode(b"x").decode()},
            },
            "slot 3 is not 32",
        ),
    ],
)
def test_malformed_tokens_are_named(body: dict[str, object], message: str) -> None:
    with pytest.raises(SlotCheckError, match=message):
        parse_slot_check_token(body)
