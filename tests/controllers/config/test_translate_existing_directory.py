"""ExistingVolumeConfig and ``volumeType: directory`` user volumes get a VolumeConfig as Talos'
``ExistingVolumeTransformer`` and ``UserVolumeTransformer`` make them: located by the volume selector or a
directory on EPHEMERAL, mounted under /var/mnt, never provisioned, encrypted or formatted (issue 17)."""

from __future__ import annotations

from volumed.config import check_config
from volumed.controllers.config._translate import DesiredVolume, desired_volumes
from volumed.resources import VolumeType

CONFIG = """\
apiVersion: v1alpha1
kind: ExistingVolumeConfig
name: archive
discovery:
  volumeSelector:
    match: volume.partition_label == "data" && volume.name == "xfs"
mount:
  readOnly: true
---
apiVersion: v1alpha1
kind: ExistingVolumeConfig
name: photos
discovery:
  volumeSelector: {match: 'volume.label == "photos"'}
---
apiVersion: v1alpha1
kind: UserVolumeConfig
name: cache
volumeType: directory
"""


def volumes(text: str) -> dict[str, DesiredVolume]:
    machine, issues = check_config(text)
    assert not issues, issues
    assert machine is not None
    return {volume.volume_id: volume for volume in desired_volumes(machine)}


def test_existing_volumes_are_located_by_their_selector_and_never_made() -> None:
    found = volumes(CONFIG)
    archive, photos = found["e-archive"], found["e-photos"]
    assert archive.config.locator_match == 'volume.partition_label == "data" && volume.name == "xfs"'
    assert photos.config.locator_match == 'volume.label == "photos"'
    for volume in (archive, photos):
        config = volume.config
        assert config.volume_type is VolumeType.PARTITION  # Talos' type of an existing volume
        assert config.partition_label == ""  # not located by a label
        assert (config.provisioning, config.encryption, config.filesystem) == (None, None, "")
        assert volume.secrets is None
    assert (archive.config.mount_target, archive.config.read_only) == ("/var/mnt/archive", True)
    assert (photos.config.mount_target, photos.config.read_only) == ("/var/mnt/photos", False)


def test_directory_volumes_are_a_directory_under_var_mnt() -> None:
    cache = volumes(CONFIG)["u-cache"]
    config = cache.config
    assert config.volume_type is VolumeType.DIRECTORY
    assert config.mount_target == "/var/mnt/cache"
    assert (config.partition_label, config.locator_match) == ("", "")
    assert (config.provisioning, config.encryption, config.filesystem, config.read_only) == (
        None,
        None,
        "",
        False,
    )
    assert cache.secrets is None


def test_partition_user_volumes_are_unchanged() -> None:
    text = (
        "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: data\n"
        "provisioning: {diskSelector: {match: '!system_disk'}, minSize: 1GiB}\n"
    )
    config = volumes(text)["u-data"].config
    assert (config.volume_type, config.partition_label, config.locator_match) == (
        VolumeType.PARTITION,
        "u-data",
        "",
    )
    assert config.filesystem == "xfs"
    assert config.provisioning is not None
