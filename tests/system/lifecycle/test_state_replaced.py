"""Seed doc lockToSTATE: "if the STATE partition is wiped/replaced with new contents, locked to STATE volumes
will not be unlockable anymore". The user volume then fails (its data untouched, byte for byte) while the
other volumes come up on the new STATE."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from tests.system.lifecycle._node import (
    describe,
    luks_slots,
    node_id_key,
    phases,
    static_key,
    status_of,
    user_volume_config,
    volume_config,
)

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node


async def test_locked_volume_unopenable_after_state_replaced(node: Node) -> None:
    node.write_config(
        volume_config("STATE", [node_id_key(0)]),
        volume_config("EPHEMERAL", [node_id_key(0)]),
        user_volume_config("data", [static_key(0, "user-secret", lock=True)]),
    )
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        (node.target("u-data") / "marker").write_text("locked to the old STATE\n")
        old_salt = (node.target("STATE") / "encryption-salt.yaml").read_bytes()
    data = node.region("u-data")
    before = data.digest()

    node.volumed("wipe", node.system_disk, "--system-labels-to-wipe", "STATE", "--yes")
    async with node.boot() as boot:
        snapshot = boot.snapshot
        assert phases(snapshot) == {"STATE": "ready", "EPHEMERAL": "ready", "u-data": "failed"}, describe(
            snapshot
        )
        assert (node.target("STATE") / "encryption-salt.yaml").read_bytes() != old_salt
        failed = status_of(snapshot, "u-data")
        assert "No usable keyslot" in failed.error_message, failed.error_message
        assert failed.mount_location == ""
        await anyio.sleep(1.5)  # a few retries (retryable, 0.5 s timer): still failed, still nothing written
        assert phases(await boot.now())["u-data"] == "failed"
    assert data.digest() == before
    assert luks_slots(data) == [0]
