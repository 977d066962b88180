"""VolumeMountRequest and MountStatus: who wants a volume mounted, and where it is mounted."""

from __future__ import annotations

from volumed.runtime import PrintColumn, ResourceDefinition, Spec

from .._namespaces import BLOCK, type_name


class VolumeMountRequestSpec(Spec):
    """A request to mount ``volume_id`` once it is ready (id = ``<volume_id>-<requester>``).

    Attributes:
        volume_id: the volume to mount (its VolumeConfig and VolumeStatus id).
        requester: who asks (``volumed`` for the MountRequester's requests).
        read_only: asks for a read-only mount (the MountRequester asks for one where the VolumeConfig's
            ``read_only`` says so: an ExistingVolumeConfig's ``mount.readOnly``); copied into the MountStatus.
    """

    volume_id: str
    requester: str
    read_only: bool = False


class MountStatusSpec(Spec):
    """A mount made for a request (id = the request's id); published once the volume is mounted.

    Attributes:
        volume_id: the mounted volume.
        requester: the request's requester.
        source: the device mounted: the volume's ``mount_location``.
        target: where it is mounted: the VolumeConfig's ``mount_target`` under ``--root``.
        filesystem: the filesystem type mounted.
        read_only: the request's ``read_only``.
        project_quota_support: mounted with ``prjquota`` (the VolumeConfig's ``project_quota_support``).
    """

    volume_id: str
    requester: str
    source: str
    target: str
    filesystem: str
    read_only: bool = False
    project_quota_support: bool = False


VolumeMountRequestDefinition: ResourceDefinition[VolumeMountRequestSpec] = ResourceDefinition(
    type=type_name("VolumeMountRequests", BLOCK),
    spec_model=VolumeMountRequestSpec,
    default_namespace=BLOCK,
    aliases=("vmr", "volumemountrequest", "volumemountrequests"),
    print_columns=(PrintColumn("Volume", "volume_id"), PrintColumn("Requester", "requester")),
)

MountStatusDefinition: ResourceDefinition[MountStatusSpec] = ResourceDefinition(
    type=type_name("MountStatuses", BLOCK),
    spec_model=MountStatusSpec,
    default_namespace=BLOCK,
    aliases=("ms", "mountstatus", "mountstatuses", "mounts"),
    print_columns=(
        PrintColumn("Volume", "volume_id"),
        PrintColumn("Source", "source"),
        PrintColumn("Target", "target"),
        PrintColumn("Filesystem", "filesystem"),
    ),
)
