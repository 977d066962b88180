"""ConfigLoader with only ``machine.systemDiskEncryption``: ConfigStatus counts the legacy blocks.

It reported ``documents: 0`` for such a config while ``volumed config validate`` listed the blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.config import load_config
from volumed.controllers import ConfigLoader
from volumed.resources import BLOCK, CONFIG, CONFIG_STATUS_ID, ConfigStatusDefinition, VolumeConfigDefinition
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_resource, run_runtime

if TYPE_CHECKING:
    from pathlib import Path

LEGACY_ONLY = """\
version: v1alpha1
machine:
  type: worker
  systemDiskEncryption:
    state:
      keys: [{nodeID: {}}]
    ephemeral:
      keys: [{nodeID: {}}]
"""
EPHEMERAL_DOC = (
    "---\napiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\nprovisioning: {maxSize: 5GiB}\n"
)
STATUS = Pointer(CONFIG, ConfigStatusDefinition.type, CONFIG_STATUS_ID)


def test_the_labels_name_documents_and_legacy_blocks() -> None:
    assert load_config(LEGACY_ONLY).labels == (
        "v1alpha1/machine.systemDiskEncryption.state",
        "v1alpha1/machine.systemDiskEncryption.ephemeral",
    )
    assert load_config(LEGACY_ONLY.split("    ephemeral:")[0] + EPHEMERAL_DOC).labels == (
        "VolumeConfig/EPHEMERAL",
        "v1alpha1/machine.systemDiskEncryption.state",
    )


async def test_config_status_counts_the_legacy_blocks(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(LEGACY_ONLY)
    async with run_runtime(ConfigLoader(config, poll_interval=0.05)) as runtime:
        state = runtime.state
        ephemeral = await assert_resource(state, Pointer(BLOCK, VolumeConfigDefinition.type, "EPHEMERAL"))
        assert ephemeral.spec.encryption is not None
        status = await assert_resource(state, STATUS, lambda r: r.spec.valid)
        assert status.spec.documents == 2
