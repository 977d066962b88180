"""MetaStore and SystemInformation: tag 9 follows the config, META serves STATE alone, UUID precedence."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import structlog.testing

from volumed.config import encryption_from_meta_json
from volumed.controllers import ConfigLoader, DiscoveryController, MetaStore, SystemInformationController
from volumed.resources import (
    BLOCK,
    SYSTEM,
    SYSTEM_INFORMATION_ID,
    MetaKeyDefinition,
    SystemInformationDefinition,
    UUIDSource,
    VolumeConfigDefinition,
    meta_key_id,
)
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_resource, run_runtime
from volumed.storage import disklayout
from volumed.storage.meta import MetaPartition, write_uuid_override

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.runtime.controller import Controller

MIB = 1024 * 1024
STATE_STATIC = """\
apiVersion: v1alpha1
kind: VolumeConfig
name: STATE
encryption:
  provider: luks2
  keys:
    - static:
        passphrase: state-secret
      slot: 0
"""
STATE_NODEID = STATE_STATIC.replace("static:\n        passphrase: state-secret", "nodeID: {}")


def meta_of(image: Path) -> MetaPartition:
    table = disklayout.create_disk_image(image, 256 * MIB, state_size=64 * MIB)
    meta = table.find("META")
    assert meta is not None
    return MetaPartition(image, offset=meta.offset(table.sector_size))


def controllers(image: Path, config: Path, node_uuid: str | None = None) -> list[Controller]:
    return [
        DiscoveryController([str(image)], interval=0.05),
        ConfigLoader(config, poll_interval=0.05),
        MetaStore(poll_interval=0.05),
        SystemInformationController(dmi_path=str(image.parent / "no-dmi"), node_uuid=node_uuid),
    ]


async def test_config_writes_tag_9_and_meta_serves_state_without_config(tmp_path: Path) -> None:
    image = tmp_path / "node.img"
    meta = meta_of(image)
    config = tmp_path / "config.yaml"
    config.write_text(STATE_STATIC)
    async with run_runtime(*controllers(image, config)) as runtime:
        await assert_resource(runtime.state, Pointer(SYSTEM, MetaKeyDefinition.type, meta_key_id(9)))
    stored = meta.get(9)
    assert stored is not None
    encryption = encryption_from_meta_json(stored)
    assert encryption is not None
    assert encryption.keys[0].static is not None  # the static STATE key sits in clear in META, as in Talos
    assert encryption.keys[0].static.passphrase.get_secret_value() == "state-secret"

    config.unlink()
    async with run_runtime(*controllers(image, config)) as runtime:
        state_config = await assert_resource(
            runtime.state,
            Pointer(BLOCK, VolumeConfigDefinition.type, "STATE"),
            lambda r: r.spec.source == "meta",
        )
        assert state_config.spec.encryption.keys[0].slot == 0


async def test_config_wins_over_meta(tmp_path: Path) -> None:
    image = tmp_path / "node.img"
    meta = meta_of(image)
    config = tmp_path / "config.yaml"
    config.write_text(STATE_STATIC)
    async with run_runtime(*controllers(image, config)) as runtime:
        await assert_resource(runtime.state, Pointer(SYSTEM, MetaKeyDefinition.type, meta_key_id(9)))
    config.write_text(STATE_NODEID)
    async with run_runtime(*controllers(image, config)) as runtime:
        state_config = await assert_resource(
            runtime.state, Pointer(BLOCK, VolumeConfigDefinition.type, "STATE")
        )
        assert state_config.spec.source == "config"
        assert state_config.spec.encryption.keys[0].kind == "nodeID"
        await assert_resource(
            runtime.state,
            Pointer(SYSTEM, MetaKeyDefinition.type, meta_key_id(9)),
            lambda r: (
                "KeyNodeID" in r.spec.value.get_secret_value()
                and '"KeyNodeID":{}' in r.spec.value.get_secret_value()
            ),
        )
    written = meta.get(9)
    assert written is not None
    assert b"state-secret" not in written


async def test_node_uuid_precedence(tmp_path: Path) -> None:
    image = tmp_path / "node.img"
    meta = meta_of(image)
    config = tmp_path / "config.yaml"
    pointer = Pointer(SYSTEM, SystemInformationDefinition.type, SYSTEM_INFORMATION_ID)
    dmi = tmp_path / "no-dmi"
    dmi.write_text("4c4c4544-0030-3510-8052-b4c04f4e4332\n")
    async with run_runtime(*controllers(image, config)) as runtime:
        info = await assert_resource(runtime.state, pointer)
        assert (info.spec.uuid, info.spec.source) == (
            "4c4c4544-0030-3510-8052-b4c04f4e4332",
            UUIDSource.SMBIOS,
        )
    write_uuid_override(meta, "11111111-2222-3333-4444-555555555555")
    async with run_runtime(*controllers(image, config)) as runtime:
        info = await assert_resource(runtime.state, pointer, lambda r: r.spec.source == UUIDSource.META)
        assert info.spec.uuid == "11111111-2222-3333-4444-555555555555"
    async with run_runtime(*controllers(image, config, node_uuid="flag-uuid")) as runtime:
        info = await assert_resource(runtime.state, pointer)
        assert (info.spec.uuid, info.spec.source) == ("flag-uuid", UUIDSource.FLAG)


async def test_corrupt_meta_is_reported_once(tmp_path: Path) -> None:
    """With both copies bad, META looked empty and nothing was said: a node without a config just waited."""
    image = tmp_path / "node.img"
    meta = meta_of(image)
    meta.set(9, b"null")
    with image.open("r+b") as handle:
        for copy in (0, 256 * 1024):
            handle.seek(meta.offset + copy + 100)
            handle.write(b"x")
    with structlog.testing.capture_logs() as logs:
        async with run_runtime(*controllers(image, tmp_path / "no-config.yaml")):
            await anyio.sleep(0.5)  # about ten polls
    corrupt = [e for e in logs if e["event"].startswith("META is corrupt")]
    assert len(corrupt) == 1, logs
    assert "tag 9 included, are unknown" in corrupt[0]["event"]
    assert "copy 0:" in corrupt[0]["error"]
    assert "copy 1:" in corrupt[0]["error"]
