"""Config texts and pointers shared by the ConfigLoader tests."""

from __future__ import annotations

from typing import Final

from volumed.resources import BLOCK, CONFIG, CONFIG_STATUS_ID, ConfigStatusDefinition, VolumeConfigDefinition
from volumed.runtime import Pointer

EPHEMERAL: Final = """\
apiVersion: v1alpha1
kind: VolumeConfig
name: EPHEMERAL
encryption:
  provider: luks2
  keys:
    - nodeID: {}
      slot: 0
"""
USER: Final = """\
---
apiVersion: v1alpha1
kind: UserVolumeConfig
name: data
provisioning:
  diskSelector:
    match: disk.size > 1u * GiB
  minSize: 1GiB
"""
STATUS: Final = Pointer(CONFIG, ConfigStatusDefinition.type, CONFIG_STATUS_ID)
USER_VOLUME: Final = Pointer(BLOCK, VolumeConfigDefinition.type, "u-data")
