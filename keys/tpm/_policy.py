"""The sealing policy as a list of steps that can be computed offline (at seal) and replayed in a TPM policy
session (at unseal).

Two steps: :class:`SignedPCRPolicyStep` (Talos' signed PCR 11 policy: TPM2_PolicyAuthorize with the UKI's
PCR-signing key, satisfied by a signature of PCR 11's current policy digest) and :class:`PCRPolicyStep`
(TPM2_PolicyPCR over the SHA-256 bank). :func:`signed_pcr_policy` is Talos v1.12's policy, :func:`pcr_policy`
volumed's PCR-only extension for machines that boot without a UKI; :func:`policy_from_token_fields` maps a
token back to one of them.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol, TypeVar, final

from ._errors import PCRPolicyError, TPMCommandError, UKIFileError, UKIPolicyError, UnsupportedPolicyError
from ._pcr import PCR_BANK, normalize_pcrs, pcr_composite_digest, pcr_selection_bytes
from ._uki import (
    DEFAULT_UKI_FILES,
    UKI_PCR,
    PCRSignature,
    PCRSigningKey,
    UKIFiles,
    find_signature,
    load_pcr_public_key,
    load_pcr_signatures,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from pathlib import Path

    from ._connection import TPMConnection

_T = TypeVar("_T")

TPM_CC_POLICY_PCR = 0x0000017F
TPM_CC_POLICY_AUTHORIZE = 0x0000016A
_EMPTY_POLICY = bytes(hashlib.sha256().digest_size)


class PolicyStep(Protocol):
    """One assertion of a policy session: computable offline, and replayable against a TPM."""

    @property
    def pcrs(self) -> tuple[int, ...]:
        """PCRs whose current values the offline computation needs (empty if none)."""
        ...

    @property
    def pubkey_pcrs(self) -> tuple[int, ...]:
        """PCRs bound through a signed policy (empty if none)."""
        ...

    def extend(self, digest: bytes, pcr_values: Mapping[int, bytes]) -> bytes:
        """Return the policy digest after this step, starting from ``digest`` (TPM 2.0 Part 1, 19.7)."""
        ...

    def apply(self, tpm: TPMConnection, session: object) -> None:
        """Run the step's policy command(s) in the TPM policy ``session`` (blocking)."""
        ...

    def load(self) -> PolicyStep:
        """The step with the files it needs read now (blocking), before a TPM connection takes its lock."""
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

    @property
    def pubkey_pcrs(self) -> tuple[int, ...]:
        return ()

    def apply(self, tpm: TPMConnection, session: object) -> None:
        tpm.policy_pcr(session, self.pcrs)

    def load(self) -> PCRPolicyStep:
        return self


@final
@dataclass(frozen=True, slots=True)
class SignedPCRPolicyStep:
    """TPM2_PolicyAuthorize with the UKI's PCR-signing key: the session satisfies it only while PCR 11 holds a
    value whose PolicyPCR digest the key signed (one signature per boot phase, in systemd's JSON).

    Both files are read for each seal and unseal (in the TPM worker thread), by :meth:`load` before the TPM
    connection is opened, so that a slow read never holds the TPM lock: the key is not recorded in the token,
    only its name inside the policy digest. A read error is kept and raised where the file is needed, so the
    errors come in the same order as when the files were read on use.
    """

    files: UKIFiles = DEFAULT_UKI_FILES
    loaded_key: PCRSigningKey | UKIFileError | None = field(default=None, compare=False, repr=False)
    loaded_signatures: tuple[PCRSignature, ...] | UKIFileError | None = field(
        default=None, compare=False, repr=False
    )

    def load(self) -> SignedPCRPolicyStep:
        return replace(
            self,
            loaded_key=_read_now(load_pcr_public_key, self.files.public_key),
            loaded_signatures=_read_now(load_pcr_signatures, self.files.signature),
        )

    def _key(self) -> PCRSigningKey:
        return _value(self.loaded_key, load_pcr_public_key, self.files.public_key)

    def _signatures(self) -> tuple[PCRSignature, ...]:
        return _value(self.loaded_signatures, load_pcr_signatures, self.files.signature)

    @property
    def pcrs(self) -> tuple[int, ...]:
        return ()

    @property
    def pubkey_pcrs(self) -> tuple[int, ...]:
        return (UKI_PCR,)

    def extend(self, digest: bytes, pcr_values: Mapping[int, bytes]) -> bytes:
        """PolicyAuthorize resets the digest, then hashes in the key's name and an empty policyRef."""
        return policy_authorize_digest(self._key().name)

    def apply(self, tpm: TPMConnection, session: object) -> None:
        """PolicyPCR(11), find the signature of the session's digest, VerifySignature, PolicyAuthorize."""
        key = self._key()
        tpm.policy_pcr(session, (UKI_PCR,))
        approved = tpm.policy_digest(session)
        entry = find_signature(self._signatures(), approved, key, path=self.files.signature)
        if entry is None:
            if tpm.read_pcrs((UKI_PCR,))[UKI_PCR] == bytes(len(approved)):
                raise UKIPolicyError(
                    "PCR 11 (sha256) is all zeroes: no UKI was measured at this boot, so the signed PCR 11 "
                    "policy cannot be satisfied"
                )
            raise UKIPolicyError(
                f"no signature in {self.files.signature} for this PCR 11 value (policy digest "
                f"{approved.hex()}): the boot is past the phases the UKI signed (e.g. after "
                "start-the-world), or another UKI was booted"
            )
        try:
            handle, name = tpm.load_external_public(key.public_area)
        except TPMCommandError as exc:
            raise UKIFileError(
                f"the TPM does not load the PCR signing public key {self.files.public_key} "
                f"({key.bits}-bit RSA, exponent {key.exponent}): {exc}"
            ) from None
        try:
            ticket = tpm.verify_signature(handle, hashlib.sha256(approved).digest(), entry.signature)
        except TPMCommandError as exc:
            raise UKIPolicyError(
                f"the signature in {self.files.signature} for this PCR 11 value does not verify with "
                f"{self.files.public_key}: {exc}"
            ) from None
        try:
            tpm.policy_authorize(session, approved, name, ticket)
        except PCRPolicyError as exc:
            raise UKIPolicyError(f"PolicyAuthorize refused: {exc}") from None


def _read_now(read: Callable[[Path], _T], path: Path) -> _T | UKIFileError:
    try:
        return read(path)
    except UKIFileError as exc:
        return exc


def _value(loaded: _T | UKIFileError | None, read: Callable[[Path], _T], path: Path) -> _T:
    """The value :meth:`SignedPCRPolicyStep.load` read (its error raised afresh), or the file read now."""
    if loaded is None:
        return read(path)
    if isinstance(loaded, UKIFileError):
        raise UKIFileError(str(loaded)) from None
    return loaded


def policy_authorize_digest(key_name: bytes, policy_ref: bytes = b"") -> bytes:
    """The digest after TPM2_PolicyAuthorize with ``key_name`` (TPM 2.0 Part 3, 23.16: reset to zeros, then
    ``H(H(0 || TPM_CC_PolicyAuthorize || keyName) || policyRef)``)."""
    first = hashlib.sha256(_EMPTY_POLICY + struct.pack(">I", TPM_CC_POLICY_AUTHORIZE) + key_name).digest()
    return hashlib.sha256(first + policy_ref).digest()


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
        """PCRs bound by a signed policy (the token's ``pubkey_pcrs``)."""
        return tuple(sorted({pcr for step in self.steps for pcr in step.pubkey_pcrs}))

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

    def load(self) -> SealingPolicy:
        """The policy with the files its steps need read now (blocking; call it before opening the TPM)."""
        return SealingPolicy(tuple(step.load() for step in self.steps))


def pcr_policy(pcrs: Iterable[int]) -> SealingPolicy:
    """volumed's PCR-only policy (an extension, for machines without a UKI): PolicyPCR over ``pcrs``."""
    return SealingPolicy((PCRPolicyStep(tuple(pcrs)),))


def signed_pcr_policy(pcrs: Iterable[int], files: UKIFiles = DEFAULT_UKI_FILES) -> SealingPolicy:
    """Talos v1.12's policy: PolicyAuthorize with the UKI's PCR-signing key, then PolicyPCR over ``pcrs`` when
    there are any (an empty list binds no PCR value besides the signed PCR 11)."""
    pcr_list = tuple(pcrs)
    signed = SignedPCRPolicyStep(files)
    return SealingPolicy((signed, PCRPolicyStep(pcr_list)) if pcr_list else (signed,))


def policy_from_token_fields(
    *,
    pcrs: Sequence[int],
    pubkey_pcrs: Sequence[int],
    alg: str,
    encryption_version: str,
    files: UKIFiles = DEFAULT_UKI_FILES,
) -> SealingPolicy:
    """Map a token's policy fields back to the policy to satisfy at unseal, by Talos' rules (``unseal.go``).

    * ``encryption_version`` set, ``pubkey_pcrs`` [11]: Talos 1.12, signed PCR 11 then PolicyPCR(``pcrs``).
    * no ``encryption_version``: Talos < 1.12, signed PCR 11, then PolicyPCR(7) when ``pcrs`` is [11] (those
      tokens recorded PCR 11 but were sealed to PCR 7 too).
    * ``encryption_version`` set, no ``pubkey_pcrs``: volumed's PCR-only extension, PolicyPCR(``pcrs``).

    Any non-empty ``encryption_version`` counts as "1": Talos' unseal only asks whether it is empty.

    Raises:
        UnsupportedPolicyError: a bank other than SHA-256, signed PCRs other than [11], or a PCR-only token
            without PCRs.
    """
    if alg not in (PCR_BANK, ""):
        raise UnsupportedPolicyError(f"PCR bank {alg!r} is not supported (only {PCR_BANK!r})")
    if list(pubkey_pcrs) not in ([], [UKI_PCR]):
        raise UnsupportedPolicyError(
            f"token is sealed to a signed policy over PCRs {list(pubkey_pcrs)}; only [{UKI_PCR}] exists"
        )
    try:
        if encryption_version == "":
            if not pubkey_pcrs and list(pcrs) == [UKI_PCR]:
                return signed_pcr_policy([7], files)
            return signed_pcr_policy([], files)
        if pubkey_pcrs:
            return signed_pcr_policy(normalize_pcrs(pcrs, allow_empty=True), files)
        return pcr_policy(pcrs)
    except ValueError as exc:
        raise UnsupportedPolicyError(f"token pcrs: {exc}") from None
