"""Machine config documents -> VolumeConfig and VolumeKeySecrets specs, with Talos' defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from pydantic import SecretBytes

from volumed.config import (
    EPHEMERAL,
    MIN_USER_VOLUME_SIZE,
    STATE,
    ExistingVolumeConfigDocument,
    KeyKind,
    RawVolumeConfigDocument,
    SwapVolumeConfigDocument,
    encryption_to_meta_json,
)
from volumed.resources import (
    NO_FILESYSTEM,
    SWAP_FILESYSTEM,
    EncryptionConfigSpec,
    KeySlotSpec,
    PbkdfSpec,
    ProvisioningConfigSpec,
    StaticKeySpec,
    VolumeConfigSpec,
    VolumeKeySecretsSpec,
    VolumeType,
)
from volumed.resources import KeyKind as ResourceKeyKind

from ._translate_disk import disk_volume_spec
from ._translate_other import directory_volume_spec, existing_volume_spec

if TYPE_CHECKING:
    from volumed.config import ByteSize, EncryptionSpec, MachineConfig, ProvisioningSpec

MOUNT_TARGETS: Final = {STATE: "/system/state", EPHEMERAL: "/var"}
USER_MOUNT_ROOT: Final = "/var/mnt"
SYSTEM_WAVE: Final = -1
USER_WAVE: Final = 0
#: Talos' selector of STATE and (by default) EPHEMERAL: the disk that holds META.
SYSTEM_DISK_MATCH: Final = "system_disk"
#: Talos' selector of a raw or swap volume without ``diskSelector`` (``noMatch``): no disk.
NO_DISK_MATCH: Final = "false"
#: Talos' ``partition.LinkSwap``: the GPT type of a swap volume's partition (others: Linux filesystem data).
LINUX_SWAP_TYPE: Final = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
MIB: Final = 1024 * 1024
#: Talos' ``quirks.PartitionSizes``: STATE is exactly 100 MiB, EPHEMERAL at least 2 GiB.
STATE_SIZE: Final = 100 * MIB
EPHEMERAL_MIN_SIZE: Final = 2 * 1024 * MIB


@dataclass(frozen=True)
class DesiredVolume:
    """What one volume should be: its config and, when it has static keys, their passphrases."""

    volume_id: str
    config: VolumeConfigSpec
    secrets: VolumeKeySecretsSpec | None


def encryption_spec(
    encryption: EncryptionSpec | None,
) -> tuple[EncryptionConfigSpec | None, VolumeKeySecretsSpec | None]:
    """Split a config ``encryption`` block into the public spec and the static passphrases."""
    if encryption is None or not encryption.enabled:
        return None, None
    keys: list[KeySlotSpec] = []
    statics: list[StaticKeySpec] = []
    for key in encryption.sorted_keys():
        kind = key.kind
        keys.append(
            KeySlotSpec(
                slot=key.slot,
                kind=ResourceKeyKind(kind.value),
                lock_to_state=key.locked_to_state,
                kms_endpoint=key.kms.endpoint if key.kms is not None else "",
                tpm_pcrs=key.tpm.effective_pcrs if key.tpm is not None else (),
                tpm_check_secureboot_on_enroll=bool(key.tpm and key.tpm.check_secureboot_status_on_enroll),
                tpm_pcr_only=bool(key.tpm and key.tpm.pcr_only),
            )
        )
        if kind is KeyKind.STATIC and key.static is not None:
            statics.append(
                StaticKeySpec(slot=key.slot, passphrase=key.static.passphrase.get_secret_value().encode())
            )
    pbkdf = encryption.pbkdf
    spec = EncryptionConfigSpec(
        provider=encryption.effective_provider,
        cipher=encryption.effective_cipher,
        key_size_bits=encryption.effective_key_size_bits,
        block_size=encryption.effective_block_size or 0,
        perf_options=encryption.perf_options,
        allow_discards=encryption.discards_allowed,
        pbkdf=(
            PbkdfSpec(
                type=pbkdf.type, memory_kib=pbkdf.memory, iterations=pbkdf.iterations, parallel=pbkdf.parallel
            )
            if pbkdf is not None
            else None
        ),
        keys=tuple(keys),
    )
    return spec, (VolumeKeySecretsSpec(static_keys=tuple(statics)) if statics else None)


def _bytes(size: ByteSize | int | None) -> int:
    if size is None:
        return 0
    return size if isinstance(size, int) else size.value


def _provisioning(provisioning: ProvisioningSpec) -> ProvisioningConfigSpec:
    """A user partition's provisioning; minSize defaults to Talos' 100 MiB (``MinUserVolumeSize``)."""
    return ProvisioningConfigSpec(
        disk_selector=provisioning.match,
        min_size=_bytes(provisioning.min_size) or MIN_USER_VOLUME_SIZE,
        max_size=provisioning.max_bytes,
        relative_max_size=provisioning.max_percent,
        grow=bool(provisioning.grow),
        wave=USER_WAVE,
    )


def system_provisioning(volume_id: str, provisioning: ProvisioningSpec | None) -> ProvisioningConfigSpec:
    """Talos' provisioning of STATE or EPHEMERAL when a machine config is present (``system_volumes.go``).

    STATE: exactly 100 MiB on the system disk (a VolumeConfig may not change it). EPHEMERAL: the config's
    ``provisioning`` where given, else the system disk, at least 2 GiB, no maximum (all the free space)
    and grown at each boot.
    """
    if volume_id == STATE:
        return ProvisioningConfigSpec(
            disk_selector=SYSTEM_DISK_MATCH,
            min_size=STATE_SIZE,
            max_size=STATE_SIZE,
            wave=SYSTEM_WAVE,
        )
    match = provisioning.match if provisioning is not None else ""
    min_size = provisioning.min_size if provisioning is not None else None
    grow = provisioning.grow if provisioning is not None else None
    return ProvisioningConfigSpec(
        disk_selector=match or SYSTEM_DISK_MATCH,
        min_size=min_size.value if min_size is not None else EPHEMERAL_MIN_SIZE,
        max_size=provisioning.max_bytes if provisioning is not None else 0,
        relative_max_size=provisioning.max_percent if provisioning is not None else 0,
        grow=grow if grow is not None else True,
        wave=SYSTEM_WAVE,
    )


def system_volume(
    volume_id: str,
    encryption: EncryptionSpec | None,
    *,
    source: str,
    provisioning: ProvisioningConfigSpec | None = None,
    project_quota_support: bool = False,
) -> DesiredVolume:
    """STATE or EPHEMERAL: located by partition label, xfs, mounted at its fixed target (with ``prjquota``
    when ``project_quota_support``: EPHEMERAL with ``machine.features.diskQuotaSupport``, as Talos).

    ``provisioning`` is None where Talos only locates the volume (STATE without a machine config, whose
    encryption comes from META). STATE's secrets also carry its META tag 9 bytes (``null`` when
    unencrypted), for the MetaStore.
    """
    spec, secrets = encryption_spec(encryption)
    if volume_id == STATE:
        secrets = VolumeKeySecretsSpec(
            static_keys=secrets.static_keys if secrets is not None else (),
            meta_json=SecretBytes(encryption_to_meta_json(encryption)),
        )
    config = VolumeConfigSpec(
        partition_label=volume_id,
        provisioning=provisioning,
        encryption=spec,
        filesystem="xfs",
        mount_target=MOUNT_TARGETS[volume_id],
        source=source,
        project_quota_support=project_quota_support,
    )
    return DesiredVolume(volume_id, config, secrets)


def desired_volumes(machine: MachineConfig) -> tuple[DesiredVolume, ...]:
    """Every volume of a machine config volumed provisions; STATE and EPHEMERAL always exist (unencrypted
    unless configured) and are provisioned on the system disk when missing, as Talos does.

    Directory user volumes, raw and swap volumes, existing volumes (located by their selector, never made)
    and, last, disk user volumes (each its selected whole disk) come after the partition user volumes.
    Documents volumed does not act on yet (IMAGECACHE) get no VolumeConfig:
    :attr:`MachineConfig.not_supported_yet` names them; ZswapConfig is applied by its own controller.
    """
    result: list[DesiredVolume] = []
    disk_volumes: list[DesiredVolume] = []
    for name in (STATE, EPHEMERAL):
        document = machine.volume(name)
        result.append(
            system_volume(
                name,
                document.effective_encryption if document is not None else None,
                source="config",
                provisioning=system_provisioning(
                    name, document.provisioning if document is not None else None
                ),
                project_quota_support=name == EPHEMERAL and machine.disk_quota_support,
            )
        )
    for user in machine.user_volumes:
        if user.effective_volume_type == VolumeType.DIRECTORY:
            result.append(DesiredVolume(user.volume_id, directory_volume_spec(user), None))
            continue
        if user.effective_volume_type == VolumeType.DISK:  # a whole disk, found by its selector
            spec, secrets = encryption_spec(user.effective_encryption)
            disk_volumes.append(DesiredVolume(user.volume_id, disk_volume_spec(user, spec), secrets))
            continue
        if not user.managed:
            continue
        spec, secrets = encryption_spec(user.effective_encryption)
        config = VolumeConfigSpec(
            partition_label=user.partition_label,
            provisioning=_provisioning(user.provisioning),
            encryption=spec,
            filesystem=user.filesystem_type,
            mount_target=f"{USER_MOUNT_ROOT}/{user.name}",
            source="config",
            project_quota_support=bool(user.filesystem.project_quota_support),
        )
        result.append(DesiredVolume(user.volume_id, config, secrets))
    for other in machine.others:
        if isinstance(other, RawVolumeConfigDocument | SwapVolumeConfigDocument):
            result.append(raw_and_swap_volume(other))
    # Existing volumes, then disk volumes, last: the ConfigLoader publishes the VolumeConfigs one at a time in
    # this order and the formatter may run a pass in between. It never sees an existing volume without every
    # labelled volume of the same config, nor a disk volume without every existing volume: what was made ready
    # first would keep the partition or disk (until the next start), so the winner depended on timing.
    result.extend(
        DesiredVolume(other.volume_id, existing_volume_spec(other), None)
        for other in machine.others
        if isinstance(other, ExistingVolumeConfigDocument)
    )
    result.extend(disk_volumes)
    return tuple(result)


def raw_and_swap_volume(document: RawVolumeConfigDocument | SwapVolumeConfigDocument) -> DesiredVolume:
    """A RawVolumeConfig or SwapVolumeConfig (Talos' ``RawVolumeTransformer``, ``SwapVolumeTransformer``): the
    partition ``r-<name>`` / ``s-<name>`` made like a user volume's (minSize 100 MiB by default, no disk
    without a selector), encrypted as configured; never mounted: a raw volume gets no filesystem, a swap
    volume is swapped on."""
    raw = isinstance(document, RawVolumeConfigDocument)
    spec, secrets = encryption_spec(document.encryption)
    provisioning = _provisioning(document.provisioning)
    config = VolumeConfigSpec(
        partition_label=document.volume_id,
        provisioning=provisioning.model_copy(
            update={
                "disk_selector": provisioning.disk_selector or NO_DISK_MATCH,
                "partition_type": "" if raw else LINUX_SWAP_TYPE,
            }
        ),
        encryption=spec,
        filesystem=NO_FILESYSTEM if raw else SWAP_FILESYSTEM,
        source="config",
    )
    return DesiredVolume(document.volume_id, config, secrets)
