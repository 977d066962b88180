"""A boot whose config does not encrypt STATE, while STATE on disk is LUKS2 (an emptied or wrong config):
STATE fails ("filesystem type mismatch"), and tag 9 must keep the LUKS2 record, since it is what opens STATE
on the next boot without a config. Talos writes tag 9 from any config; it then held `null` (review F2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from tests.system.lifecycle._node import describe, static_key, status_of, volume_config

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node


async def test_a_config_without_state_encryption_leaves_tag_9_of_an_encrypted_state(node: Node) -> None:
    node.write_config(volume_config("STATE", [static_key(0, "state-secret")]))
    meta = node.region("META")

    def tag9() -> str:
        return node.volumed("meta", "get", node.system_disk, "9", "--offset", str(meta.offset)).stdout

    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        (node.target("STATE") / "marker").write_text("on STATE\n")
    before = tag9()
    assert '"luks2"' in before

    node.write_config(volume_config("STATE"))  # STATE unencrypted: the LUKS2 on disk does not match
    async with node.boot(settle=False) as boot:
        await boot.wait_for(
            lambda s: "STATE" in s.statuses and status_of(s, "STATE").phase == "failed",
            what="STATE to fail",
        )
        assert "mismatch" in status_of(await boot.now(), "STATE").error_message
        await anyio.sleep(1.0)  # MetaStore polls (0.2 s) and reacts to the status: it had every chance
        assert tag9() == before

    async with node.boot(config=node.workdir / "no-such-config.yaml") as boot:  # META alone still opens it
        assert status_of(boot.snapshot, "STATE").phase == "ready", describe(boot.snapshot)
        assert (node.target("STATE") / "marker").read_text() == "on STATE\n"
