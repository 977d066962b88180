"""UserVolumeConfig ``volumeType: disk`` -> VolumeConfig spec (Talos' ``UserVolumeTransformer``, disk case).

The volume is a whole disk: the one disk ``provisioning.diskSelector`` matches (Talos' ``DiskMatch``
locator and provisioning selector are the same expression), with no partition table made on it; formatted
with ``filesystem.type`` when blank, encrypted as configured, mounted at ``/var/mnt/<name>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from volumed.resources import ProvisioningConfigSpec, VolumeConfigSpec, VolumeType

if TYPE_CHECKING:
    from volumed.config import UserVolumeConfigDocument
    from volumed.resources import EncryptionConfigSpec

#: Talos' ``constants.UserVolumeMountPoint``.
USER_MOUNT_ROOT: Final = "/var/mnt"
#: Talos' ``noMatch``: a selector that selects no disk (never used: validation requires ``diskSelector``).
NO_DISK_MATCH: Final = "false"


def disk_volume_spec(
    document: UserVolumeConfigDocument, encryption: EncryptionConfigSpec | None
) -> VolumeConfigSpec:
    """The VolumeConfig of a disk user volume ``u-<name>``: no partition label (the disk is found by the
    selector), provisioning with the selector alone (no sizes or grow: Talos forbids them for a disk),
    user wave, the filesystem (xfs by default) and ``projectQuotaSupport`` of the document."""
    return VolumeConfigSpec(
        partition_label="",
        volume_type=VolumeType.DISK,
        provisioning=ProvisioningConfigSpec(
            disk_selector=document.provisioning.match or NO_DISK_MATCH, wave=0
        ),
        encryption=encryption,
        filesystem=document.filesystem_type,
        mount_target=f"{USER_MOUNT_ROOT}/{document.name}",
        source="config",
        project_quota_support=bool(document.filesystem.project_quota_support),
    )
