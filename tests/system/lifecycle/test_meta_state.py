"""Seed doc: STATE's encryption config is saved in META (tag 9), so STATE can be unlocked before any machine
config is readable. A boot with a config writes tag 9 (a static STATE key sits there in clear, as the doc
warns); a boot without a config file opens STATE from META alone."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import anyio

from tests.system.lifecycle._node import describe, static_key, status_of, volume_config

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node


async def test_state_opens_from_meta_without_config(node: Node) -> None:
    node.write_config(volume_config("STATE", [static_key(0, "state-secret")]))
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        (node.target("STATE") / "marker").write_text("on STATE\n")

    meta = node.region("META")
    shown = node.volumed("meta", "get", node.system_disk, "9", "--offset", str(meta.offset))
    tag9 = json.loads(shown.stdout)
    assert tag9["EncryptionProvider"] == "luks2"
    assert [(k["KeySlot"], k["KeyStatic"]) for k in tag9["EncryptionKeys"]] == [
        (0, {"KeyData": "state-secret"})
    ]

    missing = node.workdir / "no-such-config.yaml"
    assert not missing.exists()
    async with node.boot(config=missing) as boot:
        snapshot = boot.snapshot
        assert snapshot.configured == {"STATE"}, describe(snapshot)  # nothing else is known without a config
        state = status_of(snapshot, "STATE")
        assert snapshot.ok, describe(snapshot)
        assert (state.encryption_provider, state.encryption_slot, state.configured_encryption_keys) == (
            "luks2",
            0,
            ("static",),
        )
        assert (node.target("STATE") / "marker").read_text() == "on STATE\n"
    # opening from META changed nothing in META
    assert (
        json.loads(node.volumed("meta", "get", node.system_disk, "9", "--offset", str(meta.offset)).stdout)
        == tag9
    )


async def test_a_config_that_drops_state_encryption_keeps_tag_9_while_state_is_kept(node: Node) -> None:
    """A misspelt `kind` drops STATE's encryption from the config. STATE stays open as it is until the next
    boot, but tag 9 was rewritten to `null` at once: the next boot without a config could not open STATE."""
    node.write_config(volume_config("STATE", [static_key(0, "state-secret")]))
    meta = node.region("META")

    def tag9() -> str:
        return node.volumed("meta", "get", node.system_disk, "9", "--offset", str(meta.offset)).stdout

    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        before = tag9()
        node.write_config({"apiVersion": "v1alpha1", "kind": "VolumeConfg", "name": "STATE"})
        await boot.wait_for(
            lambda s: "kept as it is until the next boot" in status_of(s, "STATE").error_message,
            what="STATE to be kept as it is",
        )
        await anyio.sleep(1.0)  # MetaStore polls and reacts to the config: it had every chance to write
        assert tag9() == before

    async with node.boot(config=node.workdir / "no-such-config.yaml") as boot:  # META alone still opens it
        assert status_of(boot.snapshot, "STATE").phase == "ready", describe(boot.snapshot)
