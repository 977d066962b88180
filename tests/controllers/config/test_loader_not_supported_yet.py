"""ConfigLoader: a valid Talos document volumed does not act on yet is loaded, named in ConfigStatus'
warnings and gets no VolumeConfig; the rest of the config still applies (issue 17)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.controllers import ConfigLoader
from volumed.resources import BLOCK, CONFIG, CONFIG_STATUS_ID, ConfigStatusDefinition, VolumeConfigDefinition
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_no_resource, assert_resource, run_runtime

if TYPE_CHECKING:
    from pathlib import Path

CONFIG_TEXT = """\
apiVersion: v1alpha1
kind: UserVolumeConfig
name: data
provisioning:
  diskSelector: {match: '!system_disk'}
  maxSize: 80%
---
apiVersion: v1alpha1
kind: UserVolumeConfig
name: scratch
volumeType: directory
---
apiVersion: v1alpha1
kind: VolumeConfig
name: IMAGECACHE
provisioning: {maxSize: 1GiB}
---
apiVersion: v1alpha1
kind: SwapVolumeConfig
name: swap1
provisioning:
  diskSelector: {match: '!system_disk'}
  maxSize: 1GiB
"""
STATUS = Pointer(CONFIG, ConfigStatusDefinition.type, CONFIG_STATUS_ID)


async def test_unsupported_documents_are_warned_about_not_dropped(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT)
    async with run_runtime(ConfigLoader(config, poll_interval=0.05)) as runtime:
        state = runtime.state
        status = await assert_resource(state, STATUS, lambda r: r.spec.valid)
        assert status.spec.errors == ()
        assert status.spec.documents == 4
        assert status.spec.warnings == (
            "VolumeConfig/IMAGECACHE: accepted but not provisioned: Talos makes this volume only for its"
            " image cache (machine.features.imageCache.localEnabled), which volumed does not run",
        )
        data = await assert_resource(state, Pointer(BLOCK, VolumeConfigDefinition.type, "u-data"))
        assert data.spec.provisioning is not None
        assert data.spec.provisioning.min_size == 100 * 1024 * 1024  # Talos' MinUserVolumeSize
        assert data.spec.provisioning.relative_max_size == 80
        await assert_no_resource(state, Pointer(BLOCK, VolumeConfigDefinition.type, "IMAGECACHE"))
        scratch = await assert_resource(state, Pointer(BLOCK, VolumeConfigDefinition.type, "u-scratch"))
        assert scratch.spec.volume_type == "directory"  # a directory on EPHEMERAL (issue 17)
        swap = await assert_resource(state, Pointer(BLOCK, VolumeConfigDefinition.type, "s-swap1"))
        assert swap.spec.filesystem == "swap"  # a swap volume is provisioned (issue 17)
