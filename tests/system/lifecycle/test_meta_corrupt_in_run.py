"""Another process corrupts both META copies while volumed runs. Without a config, STATE was opened from tag
9: it stays mounted and open (its VolumeConfig was destroyed by the runtime's clean-up of outputs the
reconcile did not write, and STATE was unmounted and closed 11 ms after the write: review21 F1). With a
config, the MetaKey of the node UUID keeps its value (it flipped to SMBIOS's or none: F2). Talos reads META
once at boot and never closes STATE because of it."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import anyio

from tests.system.lifecycle._node import describe, static_key, status_of, volume_config
from volumed.resources import (
    BLOCK,
    META_LOADED_ID,
    SYSTEM,
    SYSTEM_INFORMATION_ID,
    MetaKeyDefinition,
    MetaLoadedDefinition,
    SystemInformationDefinition,
    UUIDSource,
    VolumeConfigDefinition,
    meta_key_id,
)
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_resource
from volumed.storage.meta import MetaPartition, write_uuid_override

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Booted, Node

LOADED = Pointer(SYSTEM, MetaLoadedDefinition.type, META_LOADED_ID)
CORRUPTER = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for copy in (0, 256 * 1024):
    os.pwrite(fd, b"\\xde\\xad\\xbe\\xef", int(sys.argv[2]) + copy)
os.fsync(fd)
os.close(fd)
"""


def corrupt_meta(node: Node) -> None:
    """Another process writes bad magic into both ADV copies through the disk image and closes it."""
    meta = node.region("META")
    subprocess.run([sys.executable, "-c", CORRUPTER, str(meta.path), str(meta.offset)], check=True)


async def meta_found_corrupt(boot: Booted) -> None:
    """MetaStore read the corrupt META, and the reconcile that did (and its output clean-up) is over."""
    await assert_resource(boot.subsystem.state, LOADED, lambda r: "corrupt" in r.spec.error, within=15.0)
    await anyio.sleep(1.0)


async def test_state_opened_from_tag_9_stays_mounted_when_meta_is_corrupted(node: Node) -> None:
    node.write_config(volume_config("STATE", [static_key(0, "state-secret")]))
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        (node.target("STATE") / "marker").write_text("on STATE\n")
    async with node.boot(config=node.workdir / "no-such-config.yaml") as boot:
        assert status_of(boot.snapshot, "STATE").phase == "ready", describe(boot.snapshot)
        corrupt_meta(node)
        await meta_found_corrupt(boot)
        snapshot = await boot.now()
        assert status_of(snapshot, "STATE").phase == "ready", describe(snapshot)
        config = await boot.subsystem.state.get(Pointer(BLOCK, VolumeConfigDefinition.type, "STATE"))
        assert config.spec.source == "meta"
        assert node.target("STATE").is_mount()
        assert (node.target("STATE") / "marker").read_text() == "on STATE\n"
        assert "STATE" in boot.subsystem.services.opened


async def test_the_node_uuid_from_meta_is_kept_when_meta_is_corrupted(node: Node) -> None:
    meta = node.region("META")
    uuid = "11111111-2222-3333-4444-555555555555"
    write_uuid_override(MetaPartition(meta.path, offset=meta.offset), uuid)
    node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"))
    info = Pointer(SYSTEM, SystemInformationDefinition.type, SYSTEM_INFORMATION_ID)
    key = Pointer(SYSTEM, MetaKeyDefinition.type, meta_key_id(0x0F))
    async with node.boot(node_uuid=None) as boot:
        state = boot.subsystem.state
        assert (await state.get(info)).spec.source == UUIDSource.META
        corrupt_meta(node)
        await meta_found_corrupt(boot)
        assert (await state.get(key)).spec.value.get_secret_value() == uuid
        shown = (await state.get(info)).spec
        assert (shown.uuid, shown.source) == (uuid, UUIDSource.META)
