"""When the replayed policy digest is not the token's policy_hash, the error says what the digest is made of,
not a guess at which part changed (an edited token was blamed on "the UKI's PCR-signing key")."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import anyio
import pytest

from tests._uki import make_uki, measure_uki_boot
from volumed.keys.tpm import PCRPolicyError

if TYPE_CHECKING:
    from pathlib import Path

    from tests._swtpm import Swtpm

pytestmark = pytest.mark.interop


def test_an_edited_token_is_not_blamed_on_the_signing_key(swtpm: Swtpm, tmp_path: Path) -> None:
    uki = make_uki(tmp_path / "uki", swtpm)
    measure_uki_boot(swtpm, uki)
    provider = uki.provider(swtpm)
    new = anyio.run(provider.new_key)
    assert new.token is not None
    edited = copy.deepcopy(dict(new.token))
    del edited["UserData"]["pcrs"]  # sealed to PCR 7; the token now says none
    with pytest.raises(PCRPolicyError) as caught:
        anyio.run(provider.get_key, edited)
    message = str(caught.value)
    assert "is not the one the key was sealed under" not in message
    assert "not the token's policy_hash" in message
    assert f"the PCR-signing key in {uki.public_key}" in message
    assert "the token's pcrs/pubkey_pcrs fields" in message

    swtpm.pcr_extend(7, b"db update")
    with pytest.raises(PCRPolicyError, match=r"the current values of PCRs \[7\] \(sha256\)"):
        anyio.run(provider.get_key, new.token)
