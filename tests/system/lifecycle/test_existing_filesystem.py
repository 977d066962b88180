"""Seed doc: "only empty partitions can be encrypted". EPHEMERAL already holds a filesystem with data when the
config asks for encryption: the volume fails with "block dev type mismatch: <fs> != luks" (not retried until
something changes) and the partition is untouched, byte for byte, across boots."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import anyio
import pytest

from tests._tools import require_tool
from tests.system.lifecycle._node import describe, node_id_key, phases, status_of, volume_config

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node, Region


def put_filesystem(region: Region, fstype: str, mountpoint: str, payload: bytes) -> None:
    with region.device(read_only=False) as device:
        subprocess.run([require_tool(f"mkfs.{fstype}"), "-q", device], check=True, capture_output=True)
        os.makedirs(mountpoint)
        subprocess.run([require_tool("mount"), device, mountpoint], check=True)
        try:
            with open(os.path.join(mountpoint, "payload"), "wb") as f:
                f.write(payload)
        finally:
            subprocess.run([require_tool("umount"), mountpoint], check=True)


def read_payload(region: Region, mountpoint: str) -> bytes:
    with region.device() as device:
        subprocess.run(
            [require_tool("mount"), "-o", "ro,norecovery" if "xfs" in device else "ro", device, mountpoint],
            check=False,
        )
        try:
            with open(os.path.join(mountpoint, "payload"), "rb") as f:
                return f.read()
        finally:
            subprocess.run([require_tool("umount"), mountpoint], check=False)


@pytest.mark.parametrize("fstype", ["ext4", "xfs"])
async def test_encryption_refused_over_a_filesystem(node: Node, fstype: str) -> None:
    ephemeral = node.region("EPHEMERAL")
    payload = os.urandom(256 * 1024)
    put_filesystem(ephemeral, fstype, str(node.workdir / "mnt"), payload)
    before = ephemeral.digest()
    node.write_config(volume_config("STATE", [node_id_key(0)]), volume_config("EPHEMERAL", [node_id_key(0)]))

    for _ in range(2):  # a reboot does not change the verdict
        async with node.boot() as boot:
            snapshot = boot.snapshot
            assert phases(snapshot) == {"STATE": "ready", "EPHEMERAL": "failed"}, describe(snapshot)
            status = status_of(snapshot, "EPHEMERAL")
            assert status.error_message == f"block dev type mismatch: {fstype} != luks"
            # What the attempt learned stays, and the next attempt resumes from the phase it reached.
            assert (status.pre_fail_phase, status.location) == ("provisioned", str(ephemeral.path)), describe(
                snapshot
            )
            assert "EPHEMERAL" not in snapshot.mounted
            await anyio.sleep(1.0)  # not retried on the timer: nothing changed
            assert phases(await boot.now())["EPHEMERAL"] == "failed"
        assert ephemeral.digest() == before
    assert read_payload(ephemeral, str(node.workdir / "mnt")) == payload
