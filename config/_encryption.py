"""The ``encryption`` block of VolumeConfig and UserVolumeConfig, with Talos' defaults and key kinds."""

from __future__ import annotations

import enum
from typing import Final

from pydantic import AliasChoices, Field, SecretStr, model_validator

from ._model import StrictModel

DEFAULT_CIPHER: Final = "aes-xts-plain64"
DEFAULT_KEY_SIZE_BITS: Final = 512
ADIANTUM_CIPHERS: Final = ("xchacha12,aes-adiantum-plain64", "xchacha20,aes-adiantum-plain64")
# What volumed's LUKS2 library can format and open (storage/luks2/_area_cipher.py; config may not import
# storage, so a test keeps the two in step): Talos' three (go-blockdevice's ParseCipherKind).
SUPPORTED_CIPHERS: Final = (DEFAULT_CIPHER, *ADIANTUM_CIPHERS)
SUPPORTED_KEY_SIZES_BITS: Final = (256, 512)
# Key sizes per cipher, the first the default when keySize is 0 (go-blockdevice's keySizeDefaults: 512 for
# aes-xts-plain64, 256 for adiantum, the only size the kernel's adiantum takes).
CIPHER_KEY_SIZES_BITS: Final = {DEFAULT_CIPHER: (512, 256), **dict.fromkeys(ADIANTUM_CIPHERS, (256,))}
DEFAULT_TPM_PCRS: Final = (7,)
PERF_OPTIONS: Final = ("no_read_workqueue", "no_write_workqueue", "same_cpu_crypt")


class KeyKind(enum.StrEnum):
    """How a key slot's passphrase is produced (the names Talos shows in a volume's status)."""

    STATIC = "static"
    NODE_ID = "nodeID"
    KMS = "kms"
    TPM = "tpm"


class StaticKey(StrictModel):
    """``static``: the passphrase is written in the config (and, for STATE, copied in clear to META).

    An unquoted ``passphrase: 0x1F`` is the text ``0x1F``, as in Talos (see :mod:`._yaml`), never 31.
    """

    passphrase: SecretStr = SecretStr("")


class NodeIDKey(StrictModel):
    """``nodeID: {}``: the passphrase is the node UUID followed by the volume ID."""


class KMSKey(StrictModel):
    """``kms``: a random key sealed by a network KMS, the sealed blob kept in a LUKS2 token."""

    endpoint: str = ""


class TPMOptions(StrictModel):
    """``tpm.options``: the PCRs the sealed key is bound to (SHA-256 bank).

    ``volumedPcrOnly`` (volumed extension, not a Talos field): seal under PolicyPCR(``pcrs``) alone instead of
    Talos' signed PCR 11 (UKI) policy, for machines that boot without a signed UKI. Talos cannot unseal such
    keys.
    """

    pcrs: list[int] | None = None
    volumed_pcr_only: bool | None = Field(default=None, alias="volumedPcrOnly")

    @model_validator(mode="after")
    def _pcr_only_needs_pcrs(self) -> TPMOptions:
        if self.volumed_pcr_only and self.pcrs is not None and not self.pcrs:
            raise ValueError(
                "volumedPcrOnly needs at least one PCR in pcrs (an empty list would bind nothing)"
            )
        return self


class TPMKey(StrictModel):
    """``tpm``: a random key sealed by the TPM under Talos' signed PCR 11 policy plus PolicyPCR(``pcrs``)."""

    options: TPMOptions | None = None
    check_secureboot_status_on_enroll: bool | None = Field(
        default=None, alias="checkSecurebootStatusOnEnroll"
    )

    @property
    def effective_pcrs(self) -> tuple[int, ...]:
        """The PCRs to bind to, as Talos 1.12's ``EncryptionKeyTPM.PCRs``: PCR 7 without ``options``, else
        ``options.pcrs`` (absent or empty: none, only the signed PCR 11). The PCR-only extension, which needs
        a PCR, binds PCR 7 when ``pcrs`` is absent."""
        if self.options is None:
            return DEFAULT_TPM_PCRS
        if self.options.pcrs is None:
            return DEFAULT_TPM_PCRS if self.options.volumed_pcr_only else ()
        return tuple(self.options.pcrs)

    @property
    def pcr_only(self) -> bool:
        """Whether ``options.volumedPcrOnly`` (volumed extension) selects the PCR-only policy."""
        return self.options is not None and bool(self.options.volumed_pcr_only)


class EncryptionKey(StrictModel):
    """One entry of ``encryption.keys``: a LUKS2 key slot and how its passphrase is made.

    ``lockToState`` is also accepted as ``lockToSTATE`` (the spelling of Talos' disk-encryption guide).
    """

    slot: int = 0
    static: StaticKey | None = None
    node_id: NodeIDKey | None = Field(default=None, alias="nodeID")
    kms: KMSKey | None = None
    tpm: TPMKey | None = None
    lock_to_state: bool | None = Field(
        default=None,
        validation_alias=AliasChoices("lockToState", "lockToSTATE"),
        serialization_alias="lockToState",
    )

    @model_validator(mode="before")
    @classmethod
    def _one_lock_spelling(cls, data: object) -> object:
        if isinstance(data, dict) and "lockToState" in data and "lockToSTATE" in data:
            raise ValueError("lockToState is given twice (as lockToState and lockToSTATE)")
        return data

    @property
    def kinds(self) -> tuple[KeyKind, ...]:
        """Every kind set on this key (a valid key has exactly one)."""
        present = (
            (KeyKind.STATIC, self.static),
            (KeyKind.NODE_ID, self.node_id),
            (KeyKind.KMS, self.kms),
            (KeyKind.TPM, self.tpm),
        )
        return tuple(kind for kind, value in present if value is not None)

    @property
    def kind(self) -> KeyKind:
        """The kind of this key.

        Raises:
            ValueError: the key has no kind or several (a document that passed validation never does).
        """
        kinds = self.kinds
        if len(kinds) != 1:
            raise ValueError(f"key slot {self.slot} has {len(kinds)} key kinds, expected exactly one")
        return kinds[0]

    @property
    def locked_to_state(self) -> bool:
        """Whether the passphrase is mixed with the salt stored on STATE."""
        return bool(self.lock_to_state)


class Pbkdf(StrictModel):
    """``encryption.pbkdf`` (volumed extension): the key-slot KDF instead of cryptsetup's benchmarked one.

    Attributes:
        type: ``argon2id`` or ``argon2i`` (validation refuses ``pbkdf2``: Talos cannot open such key slots).
        memory: argon2 memory cost in KiB.
        iterations: argon2 time cost.
        parallel: argon2 threads.
    """

    type: str
    memory: int | None = None
    iterations: int | None = None
    parallel: int | None = None


class EncryptionSpec(StrictModel):
    """The ``encryption`` block: provider, keys, cipher and activation options.

    Values are kept as written (``cipher`` empty when not given); the ``effective_*`` properties apply
    Talos' defaults. An empty block, or ``provider: none`` without keys, means no encryption.
    """

    provider: str = ""
    keys: list[EncryptionKey] = Field(default_factory=list)
    cipher: str = ""
    key_size: int = Field(default=0, alias="keySize")
    block_size: int = Field(default=0, alias="blockSize")
    options: list[str] | None = None
    allow_discards: bool | None = Field(default=None, alias="allowDiscards")
    pbkdf: Pbkdf | None = None

    @property
    def enabled(self) -> bool:
        """Whether this block asks for encryption at all."""
        return bool(self.keys) or self.provider.lower() not in ("", "none")

    @property
    def effective_provider(self) -> str:
        """``luks2``: also when the provider is omitted but keys are given (as in Talos' guide); in lower case
        (Talos' provider enum reads ``LUKS2`` as luks2)."""
        provider = self.provider.lower()
        return provider if provider not in ("", "none") else "luks2"

    @property
    def effective_cipher(self) -> str:
        """The cipher, ``aes-xts-plain64`` by default."""
        return self.cipher or DEFAULT_CIPHER

    @property
    def effective_key_size_bits(self) -> int:
        """The volume key size in bits: as given, else the cipher's default (512, or 256 for adiantum)."""
        return self.key_size or CIPHER_KEY_SIZES_BITS.get(self.effective_cipher, (DEFAULT_KEY_SIZE_BITS,))[0]

    @property
    def effective_block_size(self) -> int | None:
        """The encryption sector size in bytes, or None for the LUKS2 default.

        The default (cryptsetup's too) is 4096 when the data area is a whole number of 4 KiB, else 512; it is
        not the device's sector size.
        """
        return self.block_size or None

    @property
    def perf_options(self) -> tuple[str, ...]:
        """The dm-crypt performance flags to use when opening."""
        return tuple(self.options or ())

    @property
    def discards_allowed(self) -> bool:
        """Whether TRIM passes through the encryption layer."""
        return bool(self.allow_discards)

    def sorted_keys(self) -> list[EncryptionKey]:
        """The keys in ascending slot order (the order Talos tries them in)."""
        return sorted(self.keys, key=lambda key: key.slot)
