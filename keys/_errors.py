"""Why a key could not be produced: one hierarchy, by meaning, never carrying key material."""

from __future__ import annotations


class KeyProviderError(Exception):
    """Base of every error a key provider raises.

    Messages name the key kind, the slot and the cause ("KMS unreachable", "PCR policy check failed") and
    never contain a passphrase, a salt, a sealed blob or a volume key. Not raised for a programming error
    (bad arguments to a constructor raise ``ValueError``/``TypeError``).
    """


class KeyUnavailableError(KeyProviderError):
    """The key source cannot be used now, but may be later: KMS unreachable, no TPM, salt not yet available.

    Callers try the next key and retry later. Not raised when the source answered and refused (see
    :class:`KeyRejectedError`).
    """


class KeyTimeoutError(KeyUnavailableError):
    """The provider did not answer within its time limit (see :func:`with_time_limit`)."""


class KeyRejectedError(KeyProviderError):
    """The key source answered and refused: the KMS cannot unseal this blob for this node, the TPM refuses.

    Retrying without a change (another node UUID, another boot state) gives the same answer.
    """


class PolicyCheckError(KeyRejectedError):
    """The TPM refused to unseal because the PCR policy (or the SRK name) does not match."""


class EntropyCheckError(KeyProviderError):
    """The node UUID is empty or too repetitive to be used as a nodeID key (Talos' check and messages)."""


class InvalidTokenError(KeyProviderError):
    """A LUKS2 token is missing, of another type or malformed, so the key it describes cannot be recovered."""


class SaltFileError(KeyProviderError):
    """The lockToSTATE salt file exists but cannot be read or is not a valid salt; it is never overwritten."""
