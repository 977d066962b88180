"""review23 F1: kill -9 of the FUSE server (one process for every volume) while volumed runs. Every volume
it served failed its I/O (EIO) while `volumed get volumestatuses` showed each `ready` with no error, and a
later reconcile could serve a volume again on a new loop device with its filesystem still mounted on the
dead one. Now the server's exit wakes the VolumeFormatter: each volume shows failed with the reason, no
new loop device is attached under the mounted filesystems, and stopping and starting volumed recovers
them with their data."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

from tests.system.lifecycle._node import _fuse_server_pids, describe, static_key, volume_config
from volumed.resources import VolumePhase
from volumed.storage import loop

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

VOLUMES = ("STATE", "EPHEMERAL")
REASON = "the FUSE server is not running"


def _views(node: Node) -> list[str]:
    """The loop devices over the FUSE views of the node's runtime directory."""
    runtime = str(node.state_dir / "fuse")
    return sorted(d.path for d in loop.list_loop_devices() if (d.backing_file or "").startswith(runtime))


async def test_a_killed_fuse_server_fails_every_volume_it_served_and_a_restart_recovers(node: Node) -> None:
    node.write_config(*(volume_config(volume, [static_key(0, f"{volume}-secret")]) for volume in VOLUMES))
    # no discovery poll or META poll to wake the VolumeFormatter by chance: only the server's exit does
    async with node.boot(discovery_interval=3600.0, poll_interval=3600.0) as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        for volume in VOLUMES:
            (node.target(volume) / "kept.txt").write_text(f"{volume} data\n")
            os.sync()
        devices = _views(node)
        assert len(devices) == 2
        (server,) = set(_fuse_server_pids(node.state_dir))
        held = [(node.target(volume) / "held.txt").open("a") for volume in VOLUMES]  # in use, as /var is
        try:
            os.kill(server, signal.SIGKILL)
            snapshot = await boot.wait_for(
                lambda s: all(
                    s.statuses[v].phase == VolumePhase.FAILED and REASON in s.statuses[v].error_message
                    for v in VOLUMES
                ),
                limit=10.0,
                what="both volumes to show the dead FUSE server",
            )
            for volume in VOLUMES:
                assert "stop volumed" in snapshot.statuses[volume].error_message
            assert _views(node) == devices  # nothing served again under the mounted filesystems
            assert _fuse_server_pids(node.state_dir) == []
        finally:
            for file in held:
                file.close()
    async with node.boot() as boot:  # stopped and started again: served afresh, the data intact
        assert boot.snapshot.ok, describe(boot.snapshot)
        for volume in VOLUMES:
            assert (node.target(volume) / "kept.txt").read_text() == f"{volume} data\n"


async def test_volumes_nothing_holds_are_unmounted_and_served_again_after_the_server_dies(node: Node) -> None:
    """With no file open on them, the failed volumes are unmounted (the Mounter mounts only ready ones), and
    the next retry serves them by a new server and mounts them again, their data intact."""
    node.write_config(*(volume_config(volume, [static_key(0, f"{volume}-secret")]) for volume in VOLUMES))
    async with node.boot(discovery_interval=3600.0, poll_interval=3600.0) as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        for volume in VOLUMES:
            (node.target(volume) / "kept.txt").write_text(f"{volume} data\n")
        os.sync()
        (server,) = set(_fuse_server_pids(node.state_dir))
        os.kill(server, signal.SIGKILL)
        await boot.wait_for(
            lambda s: (
                len(set(_fuse_server_pids(node.state_dir)) - {server}) == 1
                and all(s.statuses[v].phase == VolumePhase.READY for v in VOLUMES)
                and all((node.target(v) / "kept.txt").exists() for v in VOLUMES)
            ),
            what="both volumes served again by a new server and mounted",
        )
        for volume in VOLUMES:
            assert (node.target(volume) / "kept.txt").read_text() == f"{volume} data\n"
            (node.target(volume) / "new.txt").write_text("written after\n")
        assert len(_views(node)) == 2
