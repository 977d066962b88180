"""UserVolumeConfig ``volumeType: disk`` gets a VolumeConfig as Talos' ``UserVolumeTransformer`` makes it
for a disk (``user_volumes.go``): the whole disk its ``diskSelector`` matches (no partition label, no sizes or
grow), the document's filesystem (xfs by default) and encryption, mounted at /var/mnt/<name> (issue 17)."""

from __future__ import annotations

import pytest

from volumed.config import check_config
from volumed.controllers.config._translate import DesiredVolume, desired_volumes
from volumed.resources import KeyKind, VolumeType

# Talos' own example (user_volume_config.go exampleUserVolumeConfigV1Alpha1Disk), its TPM key left out.
DISK = """\
apiVersion: v1alpha1
kind: UserVolumeConfig
name: local-data
volumeType: disk
provisioning:
  diskSelector:
    match: disk.transport == "nvme"
filesystem:
  type: xfs
encryption:
  provider: luks2
  keys:
    - slot: 1
      static:
        passphrase: topsecret
"""

PLAIN = """\
apiVersion: v1alpha1
kind: UserVolumeConfig
name: scratch
volumeType: disk
provisioning:
  diskSelector: {match: 'disk.size > 100u * GiB'}
"""


def volumes(text: str) -> dict[str, DesiredVolume]:
    machine, issues = check_config(text)
    assert not issues, issues
    assert machine is not None
    assert machine.not_supported_yet == ()
    return {volume.volume_id: volume for volume in desired_volumes(machine)}


def test_disk_volume_is_the_selected_whole_disk() -> None:
    volume = volumes(DISK)["u-local-data"]
    config = volume.config
    assert config.volume_type is VolumeType.DISK
    assert config.partition_label == ""  # located by the disk selector, no partition is made
    assert config.locator_match == ""
    assert config.provisioning is not None
    assert config.provisioning.disk_selector == 'disk.transport == "nvme"'
    assert (config.provisioning.min_size, config.provisioning.max_size, config.provisioning.grow) == (
        0,
        0,
        False,
    )
    assert config.provisioning.wave == 0  # Talos' WaveUserVolumes
    assert (config.filesystem, config.mount_target, config.read_only) == ("xfs", "/var/mnt/local-data", False)
    assert config.encryption is not None
    assert [(k.slot, k.kind) for k in config.encryption.keys] == [(1, KeyKind.STATIC)]
    assert volume.secrets is not None
    assert [k.passphrase.get_secret_value() for k in volume.secrets.static_keys] == [b"topsecret"]


def test_unencrypted_disk_volume_defaults_to_xfs() -> None:
    config = volumes(PLAIN)["u-scratch"].config
    assert (config.filesystem, config.encryption, config.project_quota_support) == ("xfs", None, False)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("  minSize: 1GiB\n", "min size, max size and grow are not supported"),
        ("  grow: true\n", "min size, max size and grow are not supported"),
    ],
)
def test_disk_volume_refuses_sizes_as_talos(field: str, message: str) -> None:
    machine, issues = check_config(PLAIN + field)
    assert machine is None
    assert any(message in str(issue) for issue in issues), issues


def test_disk_volume_requires_a_selector() -> None:
    machine, issues = check_config(
        "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: x\nvolumeType: disk\n"
    )
    assert machine is None
    assert any("disk selector is required" in str(issue) for issue in issues), issues
