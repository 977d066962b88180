"""An adiantum EPHEMERAL (Talos' cipher for machines without AES instructions) on the fuse backend: the
config is valid, but the FUSE server has no userspace adiantum, so the volume fails with a status that names
the cipher and the way out (``--backend dm``), with nothing written to it; the other volumes come up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.system.lifecycle._node import node_id_key, status_of, volume_config

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

CIPHER = "xchacha12,aes-adiantum-plain64"


async def test_adiantum_volume_on_fuse_fails_naming_the_cipher_and_dm(node: Node) -> None:
    ephemeral = volume_config("EPHEMERAL", [node_id_key(0)])
    ephemeral["encryption"]["cipher"] = CIPHER
    node.write_config(volume_config("STATE"), ephemeral)
    async with node.boot(settle=False) as booted:
        snapshot = await booted.wait_for(
            lambda s: "EPHEMERAL" in s.statuses and CIPHER in s.statuses["EPHEMERAL"].error_message,
            limit=60,
            what="the EPHEMERAL error",
        )
        message = status_of(snapshot, "EPHEMERAL").error_message
        assert CIPHER in message
        assert "the fuse backend has no userspace adiantum data path; use --backend dm" in message
        ready = await booted.wait_for(
            lambda s: "STATE" in s.statuses and s.statuses["STATE"].phase.value == "ready", what="STATE ready"
        )
        assert status_of(ready, "STATE").error_message == ""
        region = node.region("EPHEMERAL")  # refused before the format: no header that opens only elsewhere
        with region.path.open("rb") as image:
            image.seek(region.offset)
            assert image.read(1 << 20) == bytes(1 << 20)
