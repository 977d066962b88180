"""VolumeConfig: what a volume should be (where it lives, how it is encrypted, formatted and mounted).

Produced from the machine config (or, for STATE without a config, from META). Static passphrases are not
here: they live in the sensitive `VolumeKeySecrets` resource so that `volumed get volumeconfigs` can be shown.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from volumed.runtime import PrintColumn, ResourceDefinition, Spec

from .._namespaces import BLOCK, type_name

NO_FILESYSTEM: Final = "none"
"""The ``filesystem`` of a raw volume (RawVolumeConfig, Talos' ``FilesystemTypeNone``): never formatted nor
mounted, ready once its partition exists (and is opened, when encrypted)."""
SWAP_FILESYSTEM: Final = "swap"
"""The ``filesystem`` of a swap volume (SwapVolumeConfig): mkswap when blank, swapon instead of a mount."""


class KeyKind(StrEnum):
    """How a key slot's passphrase is made (Talos' names, as shown in a volume's status)."""

    STATIC = "static"
    """A passphrase from the config (kept in the sensitive VolumeKeySecrets)."""
    NODE_ID = "nodeID"
    """The node UUID followed by the volume id."""
    KMS = "kms"
    """A random key sealed by a network KMS; the sealed blob lives in a LUKS2 token."""
    TPM = "tpm"
    """A random key sealed by the node's TPM; the sealed blob lives in a LUKS2 token."""


class VolumeType(StrEnum):
    """What a volume is (Talos' ``VolumeType``, the ones volumed handles)."""

    PARTITION = "partition"
    """A partition, located by its label or a volume selector (``locator_match``), made when missing."""
    DIRECTORY = "directory"
    """A directory on EPHEMERAL (a UserVolumeConfig ``volumeType: directory``): no device, never formatted."""
    DISK = "disk"
    """A whole disk (a UserVolumeConfig ``volumeType: disk``): the one disk the provisioning selector matches,
    formatted (or encrypted) only when blank; no partition table is made."""


class KeySlotSpec(Spec):
    """One configured key slot: its kind and the non-secret parameters of that kind.

    Attributes:
        slot: the LUKS2 key slot number.
        kind: how the slot's passphrase is made.
        lock_to_state: the passphrase is mixed with STATE's salt (``lockToSTATE``), so it can be made only
            once STATE is mounted.
        kms_endpoint: kind ``kms``: the KMS server's address; empty for other kinds.
        tpm_pcrs: kind ``tpm``: the PCRs (SHA-256 bank) the sealed key is bound to.
        tpm_check_secureboot_on_enroll: kind ``tpm``: Talos' ``checkSecurebootStatusOnEnroll``.
        tpm_pcr_only: kind ``tpm`` (volumed extension): seal under PolicyPCR(``tpm_pcrs``) alone, without
            Talos' signed PCR 11 policy (machines that boot without a signed UKI).
    """

    slot: int
    kind: KeyKind
    lock_to_state: bool = False
    kms_endpoint: str = ""
    tpm_pcrs: tuple[int, ...] = ()
    tpm_check_secureboot_on_enroll: bool = False
    tpm_pcr_only: bool = False


class PbkdfSpec(Spec):
    """Key-slot KDF parameters (volumed extension); absent means cryptsetup's benchmarked defaults.

    Attributes:
        type: ``argon2id`` or ``argon2i``.
        memory_kib: argon2 memory cost in KiB; None: the default.
        iterations: argon2 time cost; None: the default.
        parallel: argon2 threads; None: the default.
    """

    type: str
    memory_kib: int | None = None
    iterations: int | None = None
    parallel: int | None = None


class EncryptionConfigSpec(Spec):
    """LUKS2 parameters with Talos' defaults already applied.

    Attributes:
        provider: the encryption provider (``luks2``).
        cipher: the payload cipher.
        key_size_bits: the volume key's size in bits.
        block_size: the encryption sector size in bytes; 0 for the LUKS2 default (4096 when the data area is a
            whole number of 4 KiB, else 512).
        perf_options: the dm-crypt performance flags to open with.
        allow_discards: TRIM passes through the encryption layer.
        pbkdf: the key-slot KDF; None for cryptsetup's benchmarked defaults.
        keys: the configured key slots, in slot order.
    """

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
        disk_selector: the CEL expression a disk must match (over the Disk spec's fields); ``system_disk`` for
            STATE and EPHEMERAL by default.
        min_size: bytes that must be free on the disk for the partition to be made there.
        max_size: the new partition's size in bytes; 0 means none given (all the free space).
        relative_max_size: when not 0, the size is this percent of the largest free gap instead (a
            ``maxSize`` of ``80%``; Talos' ``RelativeMaxSize``), and ``max_size`` is 0.
        grow: the partition grows into free space after it at each boot.
        wave: system volumes (-1) are provisioned before user volumes (0).
        partition_type: the new partition's GPT type GUID; empty for Linux filesystem data (Talos' choice for
            every volume but swap, whose partitions are Linux swap).
    """

    disk_selector: str = ""
    min_size: int = 0
    max_size: int = 0
    relative_max_size: int = 0
    grow: bool = False
    wave: int = 0
    partition_type: str = ""

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
        filesystem: the filesystem type to make when the volume is empty and to mount (``xfs``, ...);
            `NO_FILESYSTEM` and `SWAP_FILESYSTEM` for raw and swap volumes.
        mount_target: where the Mounter mounts it, relative to the configured root (``/var/mnt/<name>``).
        source: what it was produced from: ``config`` (the machine config) or ``meta`` (STATE's tag 9, with no
            machine config).
        locate_non_empty: located only when the partition holds something (Talos'
            ``labelVolumeMatchAndNonEmpty``, STATE without a config): a blank partition is missing, never
            formatted.
        volume_type: a partition, a directory on EPHEMERAL (then nothing is located, opened or formatted:
            the directory is made at ``mount_target`` once EPHEMERAL is mounted), or a whole disk (located by
            ``provisioning.disk_selector``, ``partition_label`` empty).
        locator_match: when set, the volume is the first discovered volume this CEL volume selector matches
            (over ``volume`` and ``disk``, Talos' ``VolumeLocator``), not the partition labelled
            ``partition_label``: an ExistingVolumeConfig's volume, which is never provisioned, encrypted or
            formatted (``filesystem`` is empty: whatever it holds is mounted).
        read_only: the volume is mounted read-only (an ExistingVolumeConfig's ``mount.readOnly``).
        project_quota_support: the filesystem is mounted with ``prjquota`` (xfs project quotas; a
            UserVolumeConfig's ``filesystem.projectQuotaSupport``, Talos' ``MountSpec.ProjectQuotaSupport``).
    """

    partition_label: str
    provisioning: ProvisioningConfigSpec | None = None
    encryption: EncryptionConfigSpec | None = None
    filesystem: str = "xfs"
    mount_target: str = ""
    source: str = "config"
    locate_non_empty: bool = False
    volume_type: VolumeType = VolumeType.PARTITION
    locator_match: str = ""
    read_only: bool = False
    project_quota_support: bool = False


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
