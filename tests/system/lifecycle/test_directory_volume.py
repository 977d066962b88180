"""UserVolumeConfig ``volumeType: directory`` (issue 17): a directory on EPHEMERAL at /var/mnt/<name>, as
Talos v1.12 makes it (mode 0755, root:root), ready once EPHEMERAL is mounted; what is written there is kept
across restarts (never emptied) and lives on EPHEMERAL's filesystem, not under it."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Any

from tests.system.lifecycle._node import describe, phases, status_of, volume_config
from volumed.storage.filesystem import find_mount

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

DIRECTORY: dict[str, Any] = {
    "apiVersion": "v1alpha1",
    "kind": "UserVolumeConfig",
    "name": "cache",
    "volumeType": "directory",
}


async def test_directory_volume_lives_on_ephemeral_and_survives_a_restart(node: Node) -> None:
    node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"), DIRECTORY)
    ephemeral, target = node.target("EPHEMERAL"), node.target("u-cache")
    payload = os.urandom(64 * 1024)
    for boot_number in range(2):
        async with node.boot() as boot:
            snapshot = boot.snapshot
            assert phases(snapshot) == {"STATE": "ready", "EPHEMERAL": "ready", "u-cache": "ready"}, describe(
                snapshot
            )
            assert {"EPHEMERAL", "u-cache"} <= snapshot.mounted
            status = status_of(snapshot, "u-cache")
            assert (status.location, status.mount_location, status.encryption_provider) == ("", "", "")
            info = os.stat(target)
            assert stat.S_ISDIR(info.st_mode)
            assert info.st_dev == os.stat(ephemeral).st_dev  # on EPHEMERAL's filesystem
            assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o755, 0, 0)  # Talos' MountSpec
            bind = find_mount(target)  # bind mounted onto itself, as Talos does
            assert bind is not None
            assert bind.root == "/mnt/cache"
            if boot_number == 0:
                (target / "kept").write_bytes(payload)
            assert (target / "kept").read_bytes() == payload  # the restart kept it
        assert not (target / "kept").exists()  # with EPHEMERAL unmounted: it was on EPHEMERAL, not under it
