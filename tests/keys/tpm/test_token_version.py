"""A ``talos-tpm2`` token's ``encryption_version``: Talos 1.12's unseal only asks whether it is empty, so any
other value reads as "1" (a "2" was refused as an invalid token, and key-slot sync then sealed the slot again
over a peer's token)."""

from __future__ import annotations

import pytest

from tests.keys.tpm.test_provider import token_with
from volumed.keys.tpm import TPMKeyProvider, parse_tpm_token, pcr_policy, signed_pcr_policy
from volumed.keys.tpm._policy import policy_from_token_fields


@pytest.mark.parametrize("version", ["1", "2", "errata", " "])
def test_any_non_empty_version_reads_as_1(version: str) -> None:
    fields = {"pcrs": [7], "alg": "sha256", "encryption_version": version}
    assert policy_from_token_fields(pubkey_pcrs=[11], **fields) == signed_pcr_policy([7])  # type: ignore[arg-type]
    assert policy_from_token_fields(pubkey_pcrs=[], **fields) == pcr_policy([7])  # type: ignore[arg-type]


def test_a_version_2_token_parses_and_matches() -> None:
    token = token_with(pubkey_pcrs=[11], encryption_version="2")
    assert parse_tpm_token(token, slot=1).policy == signed_pcr_policy([7])
    assert TPMKeyProvider(1, pcrs=[7]).token_matches(token)
    pcr_only = token_with(encryption_version="2")
    assert parse_tpm_token(pcr_only, slot=1).policy == pcr_policy([7])
    assert TPMKeyProvider(1, pcrs=[7], pcr_only=True).token_matches(pcr_only)
    assert not TPMKeyProvider(1, pcrs=[7]).token_matches(pcr_only)
