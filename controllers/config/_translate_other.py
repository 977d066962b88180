"""ExistingVolumeConfig and directory UserVolumeConfig -> VolumeConfig specs (Talos' ``user_volumes.go``).

Neither is provisioned, encrypted or formatted by volumed: an existing volume is found by its volume selector
and mounted as it is; a directory volume is a directory on EPHEMERAL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from volumed.resources import VolumeConfigSpec, VolumeType

if TYPE_CHECKING:
    from volumed.config import ExistingVolumeConfigDocument, UserVolumeConfigDocument

#: Talos' ``constants.UserVolumeMountPoint``: user, existing and directory volumes are mounted under it.
USER_MOUNT_ROOT: Final = "/var/mnt"


def existing_volume_spec(document: ExistingVolumeConfigDocument) -> VolumeConfigSpec:
    """Talos' ``ExistingVolumeTransformer``: located by ``discovery.volumeSelector.match`` (no partition
    label, no provisioning), no encryption and no filesystem to make, mounted at ``/var/mnt/<name>``,
    read-only when ``mount.readOnly``."""
    return VolumeConfigSpec(
        partition_label="",
        locator_match=document.discovery.match,
        filesystem="",
        mount_target=f"{USER_MOUNT_ROOT}/{document.name}",
        read_only=document.read_only,
        source="config",
    )


def directory_volume_spec(document: UserVolumeConfigDocument) -> VolumeConfigSpec:
    """Talos' ``UserVolumeTransformer`` for ``volumeType: directory``: the directory ``/var/mnt/<name>`` on
    EPHEMERAL; no partition, encryption or filesystem (the document may not set them)."""
    return VolumeConfigSpec(
        partition_label="",
        volume_type=VolumeType.DIRECTORY,
        filesystem="",
        mount_target=f"{USER_MOUNT_ROOT}/{document.name}",
        source="config",
    )
