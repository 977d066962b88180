"""The sealing policy: offline digest (vector recorded from swtpm) and mapping of token fields to a policy."""

from __future__ import annotations

import hashlib

import pytest

from volumed.keys import InvalidTokenError
from volumed.keys.tpm import (
    PCRPolicyStep,
    SealingPolicy,
    UnsupportedPolicyError,
    pcr_policy,
    policy_authorize_digest,
    signed_pcr_policy,
)
from volumed.keys.tpm._policy import policy_from_token_fields

# Provenance: swtpm 0.7.1 (libtpms) after TPM2_Startup(CLEAR) and one TPM2_PCR_Extend of PCR 7 (SHA-256) with
# SHA-256(b"fw"); the digest is what TPM2_PolicyGetDigest returned for a trial session after
# TPM2_PolicyPCR(pcrDigest=empty, pcrs=sha256:7).
PCR7_AFTER_ONE_EXTEND = hashlib.sha256(bytes(32) + hashlib.sha256(b"fw").digest()).digest()
PCR7_POLICY_DIGEST = bytes.fromhex("3d0f342d04fab422f2740c0d1cb7c2e62f80702f2ca8cac0c25226b681d9857a")


def test_pcr7_policy_digest_matches_the_tpm() -> None:
    assert pcr_policy([7]).digest({7: PCR7_AFTER_ONE_EXTEND}) == PCR7_POLICY_DIGEST


def test_digest_depends_on_the_values() -> None:
    policy = pcr_policy([7])
    assert policy.digest({7: b"\x01" * 32}) != policy.digest({7: b"\x02" * 32})


def test_digest_needs_every_pcr_value() -> None:
    with pytest.raises(ValueError, match=r"PCRs \[11\]"):
        pcr_policy([7, 11]).digest({7: b"\x01" * 32})


def test_policy_lists_its_pcrs() -> None:
    policy = SealingPolicy((PCRPolicyStep((11, 0)), PCRPolicyStep((7,))))
    assert policy.pcrs == (0, 7, 11)
    assert policy.pubkey_pcrs == ()


def test_token_fields_give_the_pcr_policy() -> None:
    policy = policy_from_token_fields(pcrs=[7], pubkey_pcrs=[], alg="sha256", encryption_version="1")
    assert policy == pcr_policy([7])


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"pubkey_pcrs": [11]}, signed_pcr_policy([7])),  # Talos 1.12
        ({"pubkey_pcrs": [11], "pcrs": []}, signed_pcr_policy([])),
        ({"encryption_version": "", "pcrs": [11]}, signed_pcr_policy([7])),  # pre-1.12: PCR 7 besides
        ({"encryption_version": "", "pcrs": [7]}, signed_pcr_policy([])),  # Talos: PolicyAuthorize alone
        ({"encryption_version": "", "pcrs": [11], "pubkey_pcrs": [11]}, signed_pcr_policy([])),
    ],
)
def test_token_fields_map_as_talos_unseal_does(fields: dict[str, object], expected: SealingPolicy) -> None:
    arguments: dict[str, object] = {
        "pcrs": [7],
        "pubkey_pcrs": [],
        "alg": "sha256",
        "encryption_version": "1",
    }
    arguments.update(fields)
    assert policy_from_token_fields(**arguments) == expected  # type: ignore[arg-type]


def test_policy_authorize_digest_by_hand() -> None:
    name = bytes.fromhex("000b") + bytes(range(32))
    first = hashlib.sha256(bytes(32) + (0x16A).to_bytes(4, "big") + name).digest()
    assert policy_authorize_digest(name) == hashlib.sha256(first).digest()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"pubkey_pcrs": [7]}, r"signed policy over PCRs \[7\]"),
        ({"alg": "sha1"}, "PCR bank 'sha1' is not supported"),
        ({"pcrs": []}, "at least one PCR"),
        ({"pcrs": [30]}, "out of range"),
    ],
)
def test_unsupported_policies_are_named(fields: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "pcrs": [7],
        "pubkey_pcrs": [],
        "alg": "sha256",
        "encryption_version": "1",
    }
    arguments.update(fields)
    with pytest.raises(UnsupportedPolicyError, match=message) as caught:
        policy_from_token_fields(**arguments)  # type: ignore[arg-type]
    assert isinstance(caught.value, InvalidTokenError)
