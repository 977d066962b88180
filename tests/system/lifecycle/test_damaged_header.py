"""A LUKS2 volume whose primary header copy is lost (zeroed) still opens from the secondary, and the next
change key-slot sync makes to the header rewrites the primary, as cryptsetup would (issue 15, item 1: repairs
happen on write paths only, where nothing but LUKS is on the device)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.system.lifecycle._node import (
    cryptsetup_opens,
    describe,
    node_id_key,
    phases,
    static_key,
    volume_config,
)

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

READY = {"STATE": "ready", "EPHEMERAL": "ready"}


async def test_key_slot_sync_repairs_a_lost_primary_header(node: Node) -> None:
    node.write_config(volume_config("STATE", [node_id_key(0)]), volume_config("EPHEMERAL", [node_id_key(0)]))
    async with node.boot() as boot:
        assert phases(boot.snapshot) == READY, describe(boot.snapshot)
    ephemeral = node.region("EPHEMERAL")
    with ephemeral.path.open("r+b") as disk:
        disk.seek(ephemeral.offset)
        disk.write(bytes(4096))

    node.write_config(
        volume_config("STATE", [node_id_key(0)]),
        volume_config("EPHEMERAL", [node_id_key(0), static_key(1, "added-later")]),
    )
    async with node.boot() as boot:
        assert phases(boot.snapshot) == READY, describe(boot.snapshot)
    with ephemeral.path.open("rb") as disk:
        disk.seek(ephemeral.offset)
        assert disk.read(6) == b"LUKS\xba\xbe"
    assert cryptsetup_opens(ephemeral, b"added-later", slot=1)
