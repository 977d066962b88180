"""Existing volumes' VolumeConfigs come after every volume located by a partition label (review30 F2).

The ConfigLoader publishes the VolumeConfigs one at a time in `desired_volumes`' order and the formatter may
run a pass in between: an existing volume published before a raw or swap volume of the same config could be
made ready on the partition labelled for that volume, and a ready existing volume keeps its bytes until the
next start, so which of the two had the partition depended on that timing.
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
kind: ExistingVolumeConfig
name: y
discovery:
  volumeSelector: {match: 'volume.label == "other"'}
"""


def test_existing_volumes_are_published_after_every_labelled_volume() -> None:
    machine, issues = check_config(CONFIG)
    assert not issues, issues
    assert machine is not None
    order = [volume.volume_id for volume in desired_volumes(machine)]
    assert order == ["STATE", "EPHEMERAL", "u-data", "r-raw", "s-swp", "e-x", "e-y"]
