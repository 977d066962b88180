"""Volumes with grow grow once per start, before they are ready: a ready, mounted volume is not grown again.

Every reconcile of a ready volume passes through the formatter's mkfs step again (a mount status change is
one); the grow step there ran e2fsck on the mounted ext4 (exit 8) or mounted the mounted xfs a second time,
and the volume failed right after it was mounted (seen in 2 of 5 `volumed run --once`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from tests.system.lifecycle._node import describe, phases, user_volume_config, volume_config

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node


async def test_ready_mounted_volumes_stay_ready_after_more_reconciles(node: Node) -> None:
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        user_volume_config("data", min_size="48MiB"),  # ext4, grow: true
    )
    async with node.boot() as boot:
        assert phases(boot.snapshot) == {"STATE": "ready", "EPHEMERAL": "ready", "u-data": "ready"}
        (node.target("u-data") / "kept").write_text("data\n")
        # the mounts were reported after ready: each wakes the formatter again; give it several passes
        for _ in range(3):
            node.write_config(
                volume_config("STATE"),
                volume_config("EPHEMERAL"),
                user_volume_config("data", min_size="48MiB"),
                {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "hostname": f"n{_}"},
            )
            await anyio.sleep(1.0)
        snapshot = await boot.now()
        assert phases(snapshot) == {"STATE": "ready", "EPHEMERAL": "ready", "u-data": "ready"}, describe(
            snapshot
        )
        assert all(not s.error_message for s in snapshot.statuses.values()), describe(snapshot)
        assert (node.target("u-data") / "kept").read_text() == "data\n"
