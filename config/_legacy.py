"""``machine.systemDiskEncryption`` and ``machine.features.diskQuotaSupport`` of the ``version: v1alpha1``
machine config document.

Talos still reads this deprecated block for STATE and EPHEMERAL when their VolumeConfig has no ``encryption``
(``setupStateEncryption`` and ``system_volumes.go``), and writes it to META tag 9 in its own JSON shape. Only
this block of the v1alpha1 document is read, strictly (an unknown field is an error, as in Talos' decoder),
and ``machine.features.diskQuotaSupport`` (EPHEMERAL is mounted with ``prjquota`` when true, as Talos'
``system_volumes.go`` does; absent is false, Talos' ``pointer.SafeDeref``); every other field of the document
is ignored. The field names are v1alpha1's (``EncryptionConfig``): no
``lockToState``, no TPM ``options`` (v1alpha1 TPM keys always bind PCR 7), no ``allowDiscards``, no ``pbkdf``.
"""

from __future__ import annotations

from typing import Final

from pydantic import ConfigDict, Field, SecretStr, field_validator

from ._documents import EPHEMERAL, STATE
from ._encryption import EncryptionKey, EncryptionSpec, KMSKey, NodeIDKey, StaticKey, TPMKey
from ._model import StrictModel

LEGACY_VERSION: Final = "v1alpha1"
LEGACY_FIELD: Final = "systemDiskEncryption"
LEGACY_PATH: Final = f"machine.{LEGACY_FIELD}"
# The YAML field of each system volume in ``systemDiskEncryption``.
LEGACY_FIELDS: Final = {STATE: "state", EPHEMERAL: "ephemeral"}
DISK_QUOTA_PATH: Final = "machine.features.diskQuotaSupport"
# Text yaml.v3 also decodes into a Go bool, quoted or not (decode.go ``scalar``, case ``reflect.Bool``: YAML
# 1.1's words); ``true``/``false`` and their capitalised forms resolve to a bool only when unquoted.
_YAML11_BOOLS: Final = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "off", "Off", "OFF"), False),
}


class LegacyStaticKey(StrictModel):
    """``static``: the passphrase written in the config."""

    passphrase: SecretStr = SecretStr("")


class LegacyNodeIDKey(StrictModel):
    """``nodeID: {}``: node UUID followed by the partition label."""


class LegacyKMSKey(StrictModel):
    """``kms``: a random key sealed by a network KMS."""

    endpoint: str = ""


class LegacyTPMKey(StrictModel):
    """``tpm``: a random key sealed by the TPM; v1alpha1 has no PCR list (always PCR 7)."""

    check_secureboot_status_on_enroll: bool | None = Field(
        default=None, alias="checkSecurebootStatusOnEnroll"
    )


class LegacyEncryptionKey(StrictModel):
    """One entry of ``keys`` (v1alpha1 ``EncryptionKey``)."""

    static: LegacyStaticKey | None = None
    node_id: LegacyNodeIDKey | None = Field(default=None, alias="nodeID")
    kms: LegacyKMSKey | None = None
    slot: int = 0
    tpm: LegacyTPMKey | None = None

    def as_key(self) -> EncryptionKey:
        """The same key in VolumeConfig terms (a TPM key without options binds PCR 7, as in v1alpha1)."""
        tpm = self.tpm
        return EncryptionKey(
            slot=self.slot,
            static=None if self.static is None else StaticKey(passphrase=self.static.passphrase),
            node_id=None if self.node_id is None else NodeIDKey(),
            kms=None if self.kms is None else KMSKey(endpoint=self.kms.endpoint),
            tpm=None
            if tpm is None
            else TPMKey(check_secureboot_status_on_enroll=tpm.check_secureboot_status_on_enroll),
        )


class LegacyEncryptionConfig(StrictModel):
    """``systemDiskEncryption.state`` / ``.ephemeral`` (v1alpha1 ``EncryptionConfig``)."""

    provider: str = ""
    keys: list[LegacyEncryptionKey] = Field(default_factory=list)
    cipher: str = ""
    key_size: int = Field(default=0, alias="keySize")
    block_size: int = Field(default=0, alias="blockSize")
    options: list[str] | None = None

    def as_spec(self) -> LegacyEncryptionSpec:
        """The block as an EncryptionSpec that remembers where it came from (for tag 9's shape)."""
        return LegacyEncryptionSpec(
            provider=self.provider,
            keys=[key.as_key() for key in self.keys],
            cipher=self.cipher,
            key_size=self.key_size,
            block_size=self.block_size,
            options=None if self.options is None else list(self.options),
        )


class LegacyEncryptionSpec(EncryptionSpec):
    """An encryption block read from ``machine.systemDiskEncryption``.

    It behaves as the VolumeConfig block it corresponds to; only META tag 9 differs: Talos writes the
    v1alpha1 struct's JSON for it (other field order, no ``KeyLockToSTATE``, the provider as written).
    """


class SystemDiskEncryption(StrictModel):
    """``machine.systemDiskEncryption``."""

    state: LegacyEncryptionConfig | None = None
    ephemeral: LegacyEncryptionConfig | None = None

    def specs(self) -> dict[str, LegacyEncryptionSpec]:
        """The encryption of each system volume the block configures, by volume name."""
        blocks = {STATE: self.state, EPHEMERAL: self.ephemeral}
        return {name: block.as_spec() for name, block in blocks.items() if block is not None}


class _Features(StrictModel):
    """``machine.features``: only ``diskQuotaSupport`` (a boolean, as Talos' ``*bool``) is read."""

    model_config = ConfigDict(extra="ignore")

    disk_quota_support: bool | None = Field(default=None, alias="diskQuotaSupport")

    @field_validator("disk_quota_support", mode="before")
    @classmethod
    def _yaml11_words(cls, value: object) -> object:
        """Talos takes ``y``, ``"on"``, ``'no'``... for this field: refusing them refused its whole config."""
        return _YAML11_BOOLS.get(value, value) if isinstance(value, str) else value


class _Machine(StrictModel):
    """``machine``: only ``systemDiskEncryption`` and ``features`` are read; every other field is ignored."""

    model_config = ConfigDict(extra="ignore")

    system_disk_encryption: SystemDiskEncryption | None = Field(default=None, alias=LEGACY_FIELD)
    features: _Features | None = None


class V1Alpha1Document(StrictModel):
    """The ``version: v1alpha1`` machine config document (no ``kind``), reduced to what volumed reads."""

    model_config = ConfigDict(extra="ignore")

    machine: _Machine | None = None

    @property
    def system_disk_encryption(self) -> SystemDiskEncryption | None:
        """The legacy block, None when absent."""
        return None if self.machine is None else self.machine.system_disk_encryption

    @property
    def disk_quota_support(self) -> bool:
        """``machine.features.diskQuotaSupport``; false when absent (Talos' ``DiskQuotaSupportEnabled``)."""
        features = None if self.machine is None else self.machine.features
        return bool(features is not None and features.disk_quota_support)


def is_v1alpha1_document(kind: object, version: object) -> bool:
    """Whether a document is the v1alpha1 machine config: no ``kind`` and ``version: v1alpha1``."""
    return kind is None and version == LEGACY_VERSION
