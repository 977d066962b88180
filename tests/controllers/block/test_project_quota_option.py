"""filesystem.projectQuotaSupport of a UserVolumeConfig reaches the mount as ``prjquota``, as Talos'
MountSpec.ProjectQuotaSupport does (fsopen.WithProjectQuota); it was validated and then dropped (issue 17)."""

from __future__ import annotations

import pytest

from volumed.config import load_config
from volumed.controllers.block._mount_options import mount_options
from volumed.controllers.config._translate import desired_volumes

USER = """\
apiVersion: v1alpha1
kind: UserVolumeConfig
name: data
provisioning:
  diskSelector: {match: '!system_disk'}
  minSize: 1GiB
"""


@pytest.mark.parametrize(
    ("filesystem", "options"),
    [
        ("filesystem: {type: xfs, projectQuotaSupport: true}\n", ("prjquota",)),
        ("filesystem: {projectQuotaSupport: true}\n", ("prjquota",)),  # xfs is the default type
        ("filesystem: {type: xfs, projectQuotaSupport: false}\n", ()),
        ("filesystem: {type: xfs}\n", ()),
        ("", ()),
    ],
)
def test_project_quota_support_becomes_the_prjquota_mount_option(
    filesystem: str, options: tuple[str, ...]
) -> None:
    volumes = {volume.volume_id: volume.config for volume in desired_volumes(load_config(USER + filesystem))}
    assert volumes["u-data"].project_quota_support is (options == ("prjquota",))
    assert mount_options(volumes["u-data"]) == options
    # EPHEMERAL's is machine.features.diskQuotaSupport (no v1alpha1 document here: false, as in Talos).
    assert mount_options(volumes["EPHEMERAL"]) == ()
    assert mount_options(volumes["STATE"]) == ()
