"""Why the TPM could not seal or unseal a key: narrow subclasses of the shared key-provider errors."""

from __future__ import annotations

from .._errors import InvalidTokenError, KeyRejectedError, KeyUnavailableError, PolicyCheckError


class TPMUnavailableError(KeyUnavailableError):
    """No TPM: the TCTI cannot be opened (no ``/dev/tpmrm0``, swtpm not listening) or the connection broke.

    Raised before any key material reached the TPM. Not raised when the TPM answered and refused a command
    (see :class:`TPMCommandError`).
    """


class TPMCommandError(KeyRejectedError):
    """The TPM answered a command with an error that is not a policy failure (e.g. an object that does not
    load under this SRK, a TPM in DA lockout). The message names the command and the TPM's return code."""


class PCRPolicyError(PolicyCheckError):
    """ "PCR policy check failed": the PCR values the key was sealed to differ from the current ones (the boot
    chain or the SecureBoot state changed). Fall back to another key, then re-enroll the TPM slot."""


class SRKMismatchError(PolicyCheckError):
    """The storage root key recreated now has another name than the one the key was sealed under: the key was
    sealed by another TPM (the disk moved), or this TPM's owner hierarchy was cleared."""


class PCRValueError(KeyRejectedError):
    """Refusing to seal: a selected PCR is all zeros or all 0xFF (nothing was measured into it, so a policy on
    it protects nothing), or the TPM has no SHA-256 bank for it. Raised at enroll only."""


class SecureBootError(KeyRejectedError):
    """Refusing to enroll: SecureBoot is off or in setup mode while the SecureBoot check on enroll is on."""


class UnsupportedPolicyError(InvalidTokenError):
    """The token describes a policy this build cannot satisfy, e.g. Talos' signed PCR 11 policy (UKI boot), or
    a PCR bank other than SHA-256."""


class UKIFileError(KeyRejectedError):
    """The signed PCR 11 policy cannot be used: the UKI's PCR-signing public key or PCR signature file is
    missing (the node did not boot a signed UKI) or malformed, or the signature for this PCR 11 value was made
    with another key. The message names the file and the field."""


class UKIPolicyError(PolicyCheckError):
    """The signed PCR 11 policy does not hold at this boot: PCR 11 is all zeroes (no UKI was measured), or
    the UKI's signatures do not cover PCR 11's current value (a boot phase after the ones the UKI signed, e.g.
    after ``start-the-world``, or another UKI), or the signature does not verify."""
