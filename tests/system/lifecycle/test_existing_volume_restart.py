"""A `volumed run` killed with an existing volume mounted, started again without a reboot, adopts the loop
device the killed run left over the volume's bytes (read-write or read-only as configured) instead of
attaching a second one: the mount the killed run left is the volume's again (a second loop device was
"already a mount point"), and the stop detaches it (docs/operations.md: "volumed was killed")."""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import TYPE_CHECKING

import anyio.to_thread
import pytest

from tests.system.lifecycle._node import describe, status_of, volume_config
from tests.system.lifecycle.test_existing_volume import (
    add_partition,
    existing_volume_config,
    put_ext4,
    target_of,
)
from volumed.storage import loop

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node, Region


def _run_until_ready_then_kill(node: Node, volume_id: str) -> None:
    """`volumed run` until ``volume_id`` is ready and mounted, then SIGKILL."""
    socket = str(node.state_dir / "api.sock")
    daemon = subprocess.Popen(node.run_argv(once=False), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            shown = node.volumed("get", "mountstatuses", f"{volume_id}-volumed", "-o", "json", "--socket",
                                 socket, check=False)  # fmt: skip
            if shown.returncode == 0 and json.loads(shown.stdout)["spec"]["target"]:
                return
            assert time.monotonic() < deadline, f"timed out waiting for {volume_id} to be mounted"
            time.sleep(0.1)
    finally:
        daemon.kill()
        daemon.wait()


def loops_over(region: Region) -> list[str]:
    return [
        device.path
        for device in loop.list_loop_devices()
        if device.backing_file == os.path.realpath(region.path) and device.offset == region.offset
    ]


@pytest.mark.parametrize("read_only", [False, True], ids=["read-write", "read-only"])
async def test_a_restart_without_reboot_adopts_the_existing_volume_s_loop_device(
    node: Node, read_only: bool
) -> None:
    region = add_partition(node, "p-x")
    put_ext4(region, node.workdir, {"precious": b"x"}, label="x")
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        existing_volume_config("x", 'volume.partition_label == "p-x"', read_only=read_only),
    )
    await anyio.to_thread.run_sync(_run_until_ready_then_kill, node, "e-x")
    left = loops_over(region)
    assert len(left) == 1
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        assert "e-x" in boot.snapshot.mounted, describe(boot.snapshot)
        assert loops_over(region) == left == [status_of(boot.snapshot, "e-x").mount_location]
        assert (target_of(node, "x") / "precious").read_bytes() == b"x"
    assert loops_over(region) == []
