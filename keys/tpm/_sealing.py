"""Seal a key to the TPM under a sealing policy (signed PCR 11 and/or PCR values), and unseal it again
(blocking; one TPM connection each)."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, final

import structlog
from tpm2_pytss import TPM2B_PRIVATE, TPM2B_PUBLIC, TPMA_OBJECT

from .._errors import InvalidTokenError
from ._connection import TPMConnection
from ._errors import PCRPolicyError, PCRValueError, SRKMismatchError, UKIFileError, UKIPolicyError
from ._pcr import check_pcr_values
from ._policy import SealingPolicy, SignedPCRPolicyStep

if TYPE_CHECKING:
    from .._secret import Passphrase

_log = structlog.get_logger(__name__)


@final
@dataclass(frozen=True, slots=True)
class SealedKey:
    """A key sealed by one TPM: everything needed to unseal it there, and nothing secret in the clear.

    Attributes:
        private: marshalled ``TPM2B_PRIVATE`` (the key, encrypted by the SRK; useless without this TPM).
        public: marshalled ``TPM2B_PUBLIC`` of the sealed object (carries the policy digest).
        srk_name: marshalled ``TPM2B_NAME`` of the SRK it was sealed under (``key_name`` in the token).
        policy_digest: the sealing policy digest (``policy_hash``).
        policy: the policy to replay at unseal.
    """

    private: bytes
    public: bytes
    srk_name: bytes
    policy_digest: bytes
    policy: SealingPolicy

    def __repr__(self) -> str:
        return (
            f"SealedKey(pcrs={list(self.policy.pcrs)}, private=<{len(self.private)} bytes>, "
            f"public=<{len(self.public)} bytes>, srk_name={self.srk_name.hex()}, "
            f"policy_digest={self.policy_digest.hex()})"
        )


def seal(key: Passphrase, policy: SealingPolicy, *, tcti: str) -> SealedKey:
    """Seal ``key`` under ``policy`` to a fresh SRK on the TPM at ``tcti``.

    Reads the policy's PCRs (and PCR 11 for a signed policy) and refuses values nothing was measured into, as
    Talos does, computes the policy digest offline from them (reading the PCR-signing key file for a signed
    policy), and proves that the TPM reaches that digest now by replaying the policy in a policy session (for
    a signed policy: a signature of PCR 11's value by this key, a key the TPM loads, a signature that
    verifies), so that no key is sealed that could not be unsealed at this very boot. Then it creates the
    sealed object with parameter encryption (the key never crosses the bus in the clear). The key travels as
    a :class:`~volumed.keys.Passphrase` (redacted repr) so that no stack frame of a traceback, even one
    rendered with its locals, holds it as bare bytes; :func:`unseal` returns one too.

    Raises:
        TPMUnavailableError: no TPM at ``tcti``.
        PCRValueError: a PCR is all zeros / all 0xFF, or has no SHA-256 value; PCR 11 is all zeroes under a
            signed policy (no UKI was measured).
        UKIFileError: a UKI file is missing or malformed, the signature for PCR 11's value was made with
            another key, or the TPM does not load the key (signed policy).
        UKIPolicyError: the signature JSON has no signature for PCR 11's value, or it does not verify (signed
            policy).
        PCRPolicyError: the TPM's policy digest differs from the one computed offline.
        TPMCommandError: the TPM refused a command.
    """
    started = time.perf_counter()
    loaded = policy.load()  # the UKI files, read before the TPM lock is taken
    with TPMConnection(tcti) as tpm:
        pcr_values = tpm.read_pcrs(tuple(sorted({*policy.pubkey_pcrs, *policy.pcrs})))
        _check_uki_measured(policy, pcr_values)
        check_pcr_values(pcr_values)
        digest = loaded.digest({pcr: pcr_values[pcr] for pcr in policy.pcrs})
        srk, srk_name = tpm.create_srk()
        _prove_satisfiable(tpm, srk, loaded, digest)
        session = tpm.start_session(srk, policy=False)
        private, public = tpm.create_sealed(srk, session, key, digest)
    _log.debug(
        "tpm.sealed", pcrs=list(policy.pcrs), ms=round((time.perf_counter() - started) * 1000, 1), tcti=tcti
    )
    return SealedKey(private=private, public=public, srk_name=srk_name, policy_digest=digest, policy=policy)


def unseal(sealed: SealedKey, *, tcti: str) -> Passphrase:
    """Recover the key of ``sealed`` from the TPM at ``tcti``.

    Recreates the SRK and checks its name, loads the sealed object, replays the policy in a salted policy
    session, checks the session's digest against the sealed one, then unseals with the reply encrypted.

    Raises:
        TPMUnavailableError: no TPM at ``tcti``.
        SRKMismatchError: the SRK has another name (another TPM, or its owner hierarchy was cleared).
        PCRPolicyError: "PCR policy check failed" (PCR values changed since seal).
        InvalidTokenError: the sealed object does not carry the recorded policy digest or attributes.
        TPMCommandError: the TPM refused a command (e.g. a blob that does not load).
    """
    _check_public_area(sealed)
    started = time.perf_counter()
    policy = sealed.policy.load()  # the UKI files, read before the TPM lock is taken
    with TPMConnection(tcti) as tpm:
        srk, srk_name = tpm.create_srk()
        if not hmac.compare_digest(srk_name, sealed.srk_name):
            raise SRKMismatchError(
                "SRK name mismatch: the key was sealed under another storage root key (another TPM, or this "
                "TPM's owner hierarchy was cleared): "
                f"expected {sealed.srk_name.hex()}, found {srk_name.hex()}"
            )
        item = tpm.load(srk, sealed.private, sealed.public)
        session = tpm.start_session(srk, policy=True)
        policy.satisfy(tpm, session)
        current = tpm.policy_digest(session)
        if not hmac.compare_digest(current, sealed.policy_digest):
            raise PCRPolicyError(_mismatch_reason(sealed.policy, current, sealed.policy_digest))
        key = tpm.unseal(item, session)
    _log.debug(
        "tpm.unsealed",
        pcrs=list(sealed.policy.pcrs),
        ms=round((time.perf_counter() - started) * 1000, 1),
        tcti=tcti,
    )
    return key


def _prove_satisfiable(tpm: TPMConnection, srk: object, policy: SealingPolicy, digest: bytes) -> None:
    """Replay ``policy`` in a policy session and require the TPM's digest to be ``digest``: a key sealed under
    a policy that cannot be satisfied at this boot (wrong PCR-signing key, a signature of another key or of
    another PCR 11 value) would be the volume's key that never unseals."""
    session = tpm.start_session(srk, policy=True)
    try:
        policy.satisfy(tpm, session)
    except (UKIFileError, UKIPolicyError, PCRPolicyError) as exc:
        raise type(exc)(f"refusing to seal a key that could not be unsealed at this boot: {exc}") from None
    current = tpm.policy_digest(session)
    if not hmac.compare_digest(current, digest):
        raise PCRPolicyError(
            "refusing to seal: the TPM's policy digest after replaying the policy "
            f"({current.hex()}) is not the one computed for the sealed object ({digest.hex()})"
        )


def _mismatch_reason(policy: SealingPolicy, current: bytes, sealed: bytes) -> str:
    """What is known when the replayed digest is not the sealed one: which inputs make the digest. Which of
    them changed cannot be told from the digest."""
    inputs = []
    for step in policy.steps:
        if isinstance(step, SignedPCRPolicyStep):
            inputs.append(f"the PCR-signing key in {step.files.public_key}")
    if policy.pcrs:
        inputs.append(f"the current values of PCRs {list(policy.pcrs)} (sha256)")
    inputs.append("the token's pcrs/pubkey_pcrs fields")
    return (
        f"PCR policy check failed: replaying the token's policy gives digest {current.hex()}, not the "
        f"token's policy_hash {sealed.hex()}; the digest is made of {', '.join(inputs)}, so one of them is "
        "not what the key was sealed with"
    )


def _check_uki_measured(policy: SealingPolicy, pcr_values: dict[int, bytes]) -> None:
    """Talos' first refusal for a signed policy, in words that say what it means."""
    for pcr in policy.pubkey_pcrs:
        if pcr_values[pcr] == bytes(len(pcr_values[pcr])):
            raise PCRValueError(
                f"PCR bank {pcr} is populated with all zeroes: no UKI was measured at this boot, and the "
                f"signed PCR {pcr} policy needs one (machines that boot without a UKI can use the PCR-only "
                "policy, a volumed extension)"
            )


def _check_public_area(sealed: SealedKey) -> None:
    """The sealed object must be a policy-only object fixed to its TPM and parent whose authPolicy is the
    token's policy_hash, and both blobs must be whole TPM2B structures. Catches edited tokens before the TPM
    is involved. noDA is not required: Talos' own objects lack it."""
    public = _unmarshal_whole(TPM2B_PUBLIC, sealed.public, "sealed_blob_public")
    _unmarshal_whole(TPM2B_PRIVATE, sealed.private, "sealed_blob_private")
    area = public.publicArea
    attributes = int(area.objectAttributes)
    required = int(TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT)
    if attributes & required != required or attributes & int(TPMA_OBJECT.USERWITHAUTH):
        raise InvalidTokenError(
            f"sealed object attributes {attributes:#x} are not fixedTPM|fixedParent with userWithAuth clear "
            "(a policy-only object bound to this TPM)"
        )
    if not hmac.compare_digest(bytes(area.authPolicy), sealed.policy_digest):
        raise InvalidTokenError("sealed object's authPolicy differs from the token's policy_hash")


def _unmarshal_whole(kind: Any, blob: bytes, field: str) -> Any:
    try:
        value, used = kind.unmarshal(blob)
    except Exception:  # tpm2-pytss raises TSS2_Exception (or ValueError) for malformed input
        raise InvalidTokenError(f"{field} is not a {kind.__name__}") from None
    if used != len(blob):
        raise InvalidTokenError(f"{field} has trailing bytes after the {kind.__name__}")
    return value
