"""Existing volumes' VolumeConfigs come after every volume located by a partition label, and disk volumes'
after them (review30 F1, F2).

The ConfigLoader publishes the VolumeConfigs one at a time in `desired_volumes`' order and the formatter may
run a pass in between: an existing volume published before a raw or swap volume of the same config could be
made ready on the partition labelled for that volume, and a ready existing volume keeps its bytes until the
next start, so which of the two had the partition depended on that timing. Likewise a disk volume published
before an existing volume matching its disk could take the disk the docs give the existing volume at a start.
"""

from __future__ import annotations

from volumed.config import check_config
from volumed.controllers.config._translate import desired_volumes

CONFIG = """\
apiVersion: v1alpha1
kind: ExistingVolumeConfig
name: x
discovery:
  volumeSelector: {match: 'volume.label == "foolabel"'}
---
apiVersion: v1alpha1
kind: RawVolumeConfig
name: raw
provisioning:
  diskSelector: {match: '!system_disk'}
  minSize: 16MiB
---
apiVersion: v1alpha1
kind: SwapVolumeConfig
name: swp
provisioning:
  diskSelector: {match: '!system_disk'}
  minSize: 16MiB
---
apiVersion: v1alpha1
kind: UserVolumeConfig
name: data
provisioning:
  diskSelector: {match: '!system_disk'}
  minSize: 16MiB
---
apiVersion: v1alpha1
kind: UserVolumeConfig
name: whole
volumeType: disk
provisioning:
  diskSelector: {match: 'disk.size == 320u * MiB'}
---
apiVersion: v1alpha1
kind: ExistingVolumeConfig
name: y
discovery:
  volumeSelector: {match: 'volume.label == "other"'}
"""


def test_existing_volumes_come_after_every_labelled_volume_and_disk_volumes_after_them() -> None:
    machine, issues = check_config(CONFIG)
    assert not issues, issues
    assert machine is not None
    order = [volume.volume_id for volume in desired_volumes(machine)]
    assert order == ["STATE", "EPHEMERAL", "u-data", "r-raw", "s-swp", "e-x", "e-y", "u-whole"]
