"""The sealing policy as a list of steps that can be computed offline (at seal) and replayed in a TPM policy
session (at unseal).

Today there is one step, :class:`PCRPolicyStep` (TPM2_PolicyPCR over the SHA-256 bank). Talos' signed PCR 11
policy (TPM2_PolicyAuthorize with the UKI's PCR-signing key, then a signature check of the current PCR 11
policy) fits the same shape: a step whose ``extend`` hashes ``TPM_CC_PolicyAuthorize || keyName || policyRef``
and whose ``apply`` loads the public key, verifies the signature and runs PolicyAuthorize. Tokens record it as
``pubkey_pcrs``; :func:`policy_from_token_fields` is where such tokens would be mapped to that step.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, final

from ._errors import UnsupportedPolicyError
from ._pcr import PCR_BANK, normalize_pcrs, pcr_composite_digest, pcr_selection_bytes

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from ._connection import TPMConnection

TPM_CC_POLICY_PCR = 0x0000017F
_EMPTY_POLICY = bytes(hashlib.sha256().digest_size)


class PolicyStep(Protocol):
    """One assertion of a policy session: computable offline, and replayable against a TPM."""

    @property
    def pcrs(self) -> tuple[int, ...]:
        """PCRs whose current values the offline computation needs (empty if none)."""
        ...

    def extend(self, digest: bytes, pcr_values: Mapping[int, bytes]) -> bytes:
        """Return the policy digest after this step, starting from ``digest`` (TPM 2.0 Part 1, 19.7)."""
        ...

    def apply(self, tpm: TPMConnection, session: object) -> None:
        """Run the step's policy command(s) in the TPM policy ``session`` (blocking)."""
        ...


@final
@dataclass(frozen=True, slots=True)
class PCRPolicyStep:
    """TPM2_PolicyPCR over the SHA-256 values of ``pcrs``: the session only satisfies the policy while those
    PCRs hold the values they held at seal."""

    pcrs: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "pcrs", normalize_pcrs(self.pcrs))

    def extend(self, digest: bytes, pcr_values: Mapping[int, bytes]) -> bytes:
        missing = [pcr for pcr in self.pcrs if pcr not in pcr_values]
        if missing:
            raise ValueError(f"PolicyPCR needs the values of PCRs {missing}")
        selected = {pcr: pcr_values[pcr] for pcr in self.pcrs}
        return hashlib.sha256(
            digest
            + struct.pack(">I", TPM_CC_POLICY_PCR)
            + pcr_selection_bytes(self.pcrs)
            + pcr_composite_digest(selected)
        ).digest()

    def apply(self, tpm: TPMConnection, session: object) -> None:
        tpm.policy_pcr(session, self.pcrs)


@final
@dataclass(frozen=True, slots=True)
class SealingPolicy:
    """The ordered policy steps a sealed key's ``authPolicy`` is computed from."""

    steps: tuple[PolicyStep, ...]

    @property
    def pcrs(self) -> tuple[int, ...]:
        """PCRs bound by value (the token's ``pcrs``)."""
        return tuple(sorted({pcr for step in self.steps for pcr in step.pcrs}))

    @property
    def pubkey_pcrs(self) -> tuple[int, ...]:
        """PCRs bound by a signed policy (the token's ``pubkey_pcrs``); none in this build."""
        return ()

    def digest(self, pcr_values: Mapping[int, bytes]) -> bytes:
        """The policy digest offline: what the TPM's policy session holds after :meth:`satisfy` if the PCRs
        still hold ``pcr_values``."""
        digest = _EMPTY_POLICY
        for step in self.steps:
            digest = step.extend(digest, pcr_values)
        return digest

    def satisfy(self, tpm: TPMConnection, session: object) -> None:
        """Replay every step in the policy ``session``."""
        for step in self.steps:
            step.apply(tpm, session)


def pcr_policy(pcrs: Iterable[int]) -> SealingPolicy:
    """The policy of a Talos ``tpm`` key without UKI: PolicyPCR over ``pcrs`` (SHA-256 bank)."""
    return SealingPolicy((PCRPolicyStep(tuple(pcrs)),))


def policy_from_token_fields(
    *, pcrs: Sequence[int], pubkey_pcrs: Sequence[int], alg: str, encryption_version: str
) -> SealingPolicy:
    """Map a token's policy fields back to the policy to satisfy at unseal.

    Raises:
        UnsupportedPolicyError: a signed PCR policy (``pubkey_pcrs`` set, or a pre-1.12 Talos token without
            ``encryption_version``, which is implicitly signed PCR 11), a bank other than SHA-256, or no PCRs.
    """
    if alg != PCR_BANK:
        raise UnsupportedPolicyError(f"PCR bank {alg!r} is not supported (only {PCR_BANK!r})")
    if encryption_version != "1":
        raise UnsupportedPolicyError(
            "token has no encryption_version '1': it is a pre-1.12 Talos token sealed to PCR 7 and a signed "
            "PCR 11 policy (UKI), which this build does not support"
        )
    if pubkey_pcrs:
        raise UnsupportedPolicyError(
            f"token is sealed to a signed PCR policy over PCRs {list(pubkey_pcrs)} (Talos UKI), "
            "which this build does not support"
        )
    try:
        return pcr_policy(pcrs)
    except ValueError as exc:
        raise UnsupportedPolicyError(f"token pcrs: {exc}") from None
