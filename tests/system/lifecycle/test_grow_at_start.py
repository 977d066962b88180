"""`volumed run` grows volumes at start as Talos' grow does: the disk images get larger between two boots,
and the next boot's EPHEMERAL (encrypted, xfs) and a user volume (encrypted, ext4) have a larger partition,
mapping and filesystem, with the files written before intact.

Independent side: sfdisk reads the partition sizes, cryptsetup's luksDump the segment, xfs_info and
dumpe2fs the filesystems (through the mounted devices), sha256 the files.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tests._sizes import file_digests as _files
from tests._sizes import filesystem_size as _fs_size
from tests._sizes import sfdisk_sizes as _sizes
from tests.system.lifecycle._node import (
    describe,
    luks_dump,
    phases,
    static_key,
    status_of,
    user_volume_config,
    volume_config,
)

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

MIB = 1024 * 1024
GROWTH = 512 * MIB


def _segment_is_dynamic(node: Node, label: str) -> bool:
    return bool(luks_dump(node.region(label))["segments"]["0"]["size"] == "dynamic")


async def test_a_grown_disk_grows_ephemeral_and_a_user_volume_at_the_next_start(node: Node) -> None:
    documents = (
        volume_config("STATE"),
        volume_config("EPHEMERAL", [static_key(0, "ephemeral-secret")]),
        user_volume_config("data", [static_key(0, "data-secret")], min_size="64MiB"),  # ext4, grow
    )
    node.write_config(*documents)
    async with node.boot() as boot:
        assert phases(boot.snapshot) == {"STATE": "ready", "EPHEMERAL": "ready", "u-data": "ready"}
        written = {}
        for volume in ("EPHEMERAL", "u-data"):
            target = node.target(volume)
            for i in range(3):
                (target / f"file{i}").write_bytes(os.urandom(MIB + 4096 * i))
            written[volume] = _files(target)
        before_sizes = {
            "EPHEMERAL": _sizes(node.system_disk)["EPHEMERAL"],
            "u-data": _sizes(node.data_disk)["u-data"],
        }
        before_fs = {
            v: _fs_size(status_of(boot.snapshot, v).mount_location, fs)
            for v, fs in (("EPHEMERAL", "xfs"), ("u-data", "ext4"))
        }

    for image in (node.system_disk, node.data_disk):
        with image.open("r+b") as f:
            f.truncate(image.stat().st_size + GROWTH)

    async with node.boot() as boot:
        snapshot = boot.snapshot
        assert phases(snapshot) == {"STATE": "ready", "EPHEMERAL": "ready", "u-data": "ready"}, describe(
            snapshot
        )
        after_sizes = {
            "EPHEMERAL": _sizes(node.system_disk)["EPHEMERAL"],
            "u-data": _sizes(node.data_disk)["u-data"],
        }
        for volume, fstype in (("EPHEMERAL", "xfs"), ("u-data", "ext4")):
            assert after_sizes[volume] == before_sizes[volume] + GROWTH, (volume, before_sizes, after_sizes)
            assert _segment_is_dynamic(node, volume)
            device = status_of(snapshot, volume).mount_location
            assert _fs_size(device, fstype) >= before_fs[volume] + GROWTH - 8 * MIB, volume
            assert _files(node.target(volume)) == written[volume], volume
            assert status_of(snapshot, volume).size == after_sizes[volume]
