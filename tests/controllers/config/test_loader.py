"""ConfigLoader: config file -> VolumeConfigs; an invalid change leaves volumes alone; staged configs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from volumed.controllers import ConfigLoader, staged_path
from volumed.resources import (
    BLOCK,
    CONFIG,
    CONFIG_STATUS_ID,
    ConfigStatusDefinition,
    KeyKind,
    VolumeConfigDefinition,
    VolumeKeySecretsDefinition,
)
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_no_resource, assert_resource, run_runtime

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.runtime import Resource

EPHEMERAL_NODEID = """\
apiVersion: v1alpha1
kind: VolumeConfig
name: EPHEMERAL
encryption:
  provider: luks2
  keys:
    - nodeID: {}
      slot: 0
"""
USER_STATIC = """\
---
apiVersion: v1alpha1
kind: UserVolumeConfig
name: data
provisioning:
  diskSelector:
    match: disk.size > 1u * GiB
  minSize: 1GiB
encryption:
  provider: luks2
  keys:
    - static:
        passphrase: sekrit
      slot: 2
      lockToSTATE: true
"""
STATUS = Pointer(CONFIG, ConfigStatusDefinition.type, CONFIG_STATUS_ID)


def volume(volume_id: str) -> Pointer:
    return Pointer(BLOCK, VolumeConfigDefinition.type, volume_id)


async def test_documents_become_volume_configs(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(EPHEMERAL_NODEID + USER_STATIC)
    async with run_runtime(ConfigLoader(config, poll_interval=0.05)) as runtime:
        state = runtime.state
        ephemeral = await assert_resource(state, volume("EPHEMERAL"))
        assert ephemeral.spec.mount_target == "/var"
        assert ephemeral.spec.filesystem == "xfs"
        assert [k.kind for k in ephemeral.spec.encryption.keys] == [KeyKind.NODE_ID]
        stateless = await assert_resource(state, volume("STATE"))
        assert stateless.spec.encryption is None  # STATE always exists, unencrypted unless configured
        user = await assert_resource(state, volume("u-data"))
        assert user.spec.mount_target == "/var/mnt/data"
        assert user.spec.provisioning is not None
        assert user.spec.provisioning.min_size == 1024**3
        assert user.spec.encryption.keys[0].lock_to_state
        secrets = await assert_resource(state, Pointer(BLOCK, VolumeKeySecretsDefinition.type, "u-data"))
        assert secrets.spec.passphrase(2) == b"sekrit"
        assert "sekrit" not in repr(secrets)
        status = await assert_resource(state, STATUS, lambda r: r.spec.valid)
        assert status.spec.documents == 2


async def test_invalid_change_keeps_the_volumes(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(EPHEMERAL_NODEID + USER_STATIC)
    async with run_runtime(ConfigLoader(config, poll_interval=0.05)) as runtime:
        state = runtime.state
        await assert_resource(state, volume("u-data"))
        config.write_text(EPHEMERAL_NODEID.replace("slot: 0", "slot: 0\n    - nodeID: {}\n      slot: 0"))

        def invalid(resource: Resource[object]) -> bool:
            return not resource.spec.valid and bool(resource.spec.errors)  # type: ignore[attr-defined]

        status = await assert_resource(state, STATUS, invalid)
        assert any("slot" in error for error in status.spec.errors)
        await anyio.sleep(0.2)  # several polls later the volumes are still those of the last valid config
        await assert_resource(state, volume("u-data"))
        config.write_text(EPHEMERAL_NODEID)
        await assert_no_resource(state, volume("u-data"))
        await assert_resource(state, STATUS, lambda r: r.spec.valid)


async def test_staged_config_is_promoted_at_start(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(EPHEMERAL_NODEID)
    staged_path(config).write_text(EPHEMERAL_NODEID + USER_STATIC)
    async with run_runtime(ConfigLoader(config, poll_interval=0.05)) as runtime:
        await assert_resource(runtime.state, volume("u-data"))
        status = await assert_resource(runtime.state, STATUS)
        assert status.spec.staged_promoted
    assert not staged_path(config).exists()
    assert "data" in config.read_text()


async def test_no_config_file(tmp_path: Path) -> None:
    async with run_runtime(ConfigLoader(tmp_path / "missing.yaml", poll_interval=0.05)) as runtime:
        status = await assert_resource(runtime.state, STATUS)
        assert not status.spec.present
        await assert_no_resource(runtime.state, volume("STATE"), within=0.2)
