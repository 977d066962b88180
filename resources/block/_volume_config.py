"""VolumeConfig: what a volume should be (where it lives, how it is encrypted, formatted and mounted).

Produced from the machine config (or, for STATE without a config, from META). Static passphrases are not
here: they live in the sensitive `VolumeKeySecrets` resource so that `volumed get volumeconfigs` can be shown.
"""

from __future__ import annotations

from enum import StrEnum

from volumed.runtime import PrintColumn, ResourceDefinition, Spec

from .._namespaces import BLOCK, type_name


class KeyKind(StrEnum):
    """How a key slot's passphrase is made (Talos' names, as shown in a volume's status)."""

    STATIC = "static"
    NODE_ID = "nodeID"
    KMS = "kms"
    TPM = "tpm"


class KeySlotSpec(Spec):
    """One configured key slot: its kind and the non-secret parameters of that kind."""

    slot: int
    kind: KeyKind
    lock_to_state: bool = False
    kms_endpoint: str = ""
    tpm_pcrs: tuple[int, ...] = ()
    tpm_check_secureboot_on_enroll: bool = False
    # volumed extension: PolicyPCR alone, no signed PCR 11 (machines without a UKI)
    tpm_pcr_only: bool = False


class PbkdfSpec(Spec):
    """Key-slot KDF parameters (volumed extension); absent means cryptsetup's benchmarked defaults."""

    type: str
    memory_kib: int | None = None
    iterations: int | None = None
    parallel: int | None = None


class EncryptionConfigSpec(Spec):
    """LUKS2 parameters with Talos' defaults already applied."""

    provider: str = "luks2"
    cipher: str = "aes-xts-plain64"
    key_size_bits: int = 512
    block_size: int = 0
    perf_options: tuple[str, ...] = ()
    allow_discards: bool = False
    pbkdf: PbkdfSpec | None = None
    keys: tuple[KeySlotSpec, ...] = ()


class ProvisioningConfigSpec(Spec):
    """Where to make the volume's partition when it is not found, and how large (Talos' ProvisioningSpec).

    Attributes:
        min_size: bytes that must be free on the disk for the partition to be made there.
        max_size: the new partition's size in bytes; 0 means none given (all the free space).
        relative_max_size: when not 0, the size is this percent of the largest free gap instead (a
            ``maxSize`` of ``80%``; Talos' ``RelativeMaxSize``), and ``max_size`` is 0.
        grow: the partition grows into free space after it at each boot.
        wave: system volumes (-1) are provisioned before user volumes (0).
    """

    disk_selector: str = ""
    min_size: int = 0
    max_size: int = 0
    relative_max_size: int = 0
    grow: bool = False
    wave: int = 0

    def resolve_max_size(self, available: int) -> int:
        """The maximum size for ``available`` free bytes; 0 when unlimited (Talos' ``ResolveMaxSize``)."""
        if self.relative_max_size:
            return available * self.relative_max_size // 100
        return self.max_size


class VolumeConfigSpec(Spec):
    """The desired state of one volume.

    Attributes:
        partition_label: the locator: the volume is the partition with this GPT name.
        provisioning: how to create the partition when missing; None for a volume that is only located
            (STATE without a machine config, a user volume with no ``provisioning``).
        encryption: None for an unencrypted volume.
        mount_target: where the Mounter mounts it, relative to the configured root (``/var/mnt/<name>``).
    """

    partition_label: str
    provisioning: ProvisioningConfigSpec | None = None
    encryption: EncryptionConfigSpec | None = None
    filesystem: str = "xfs"
    mount_target: str = ""
    source: str = "config"
    # Located only when the partition holds something (Talos' `labelVolumeMatchAndNonEmpty`, STATE without a
    # config): a blank partition is missing, never formatted.
    locate_non_empty: bool = False


VolumeConfigDefinition: ResourceDefinition[VolumeConfigSpec] = ResourceDefinition(
    type=type_name("VolumeConfigs", BLOCK),
    spec_model=VolumeConfigSpec,
    default_namespace=BLOCK,
    aliases=("vc", "volumeconfig", "volumeconfigs"),
    print_columns=(
        PrintColumn("Locator", "partition_label"),
        PrintColumn("Encryption", "encryption.provider"),
        PrintColumn("Filesystem", "filesystem"),
        PrintColumn("Mount", "mount_target"),
        PrintColumn("Source", "source"),
    ),
)
