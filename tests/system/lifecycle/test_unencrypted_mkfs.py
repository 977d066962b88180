"""Unencrypted volumes and mkfs: a power cut in the middle of volumed's own mkfs is made good at the next boot
(the mark in META), while a filesystem anybody else made — with no mark, or with a mark that is not its own —
is never formatted: a foreign type is refused and left byte for byte, a foreign one of the wanted type is
adopted as it is."""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

import anyio.to_thread
import pytest

from tests._tools import require_tool
from tests.system.lifecycle._node import describe, phases, status_of, volume_config
from tests.system.lifecycle.test_existing_filesystem import put_filesystem, read_payload
from tests.system.lifecycle.test_kill_9 import MKFS_SHIM, run_killed_in_mkfs, run_to_the_end
from volumed.controllers.block._mkfs_mark import VolumePartition, mark_mkfs, read_marks
from volumed.storage.blockdev import Region as DiskRegion
from volumed.storage.gpt import read_partition_table
from volumed.storage.meta import MetaPartition
from volumed.storage.probe import probe_region

if TYPE_CHECKING:
    from pathlib import Path

    from tests.system.lifecycle._node import Node, Region

UNENCRYPTED = (volume_config("STATE"), volume_config("EPHEMERAL"))


def meta_of(node: Node) -> MetaPartition:
    region = node.region("META")
    return MetaPartition(region.path, offset=region.offset)


def partition_of(node: Node, label: str) -> VolumePartition:
    """The volume's partition as the formatter sees it on a disk image."""
    region = node.region(label)
    number = next(p.number for p in read_partition_table(region.path).partitions if p.name == label)
    path = str(region.path)
    return VolumePartition(label, label, path, region.offset, region.size, path, number)


def probe(region: Region) -> tuple[str, str | None] | None:
    found = probe_region(DiskRegion(str(region.path), region.offset, region.size))
    return None if found is None else (found.type.value, found.uuid)


async def test_power_cut_during_mkfs_of_an_unencrypted_volume_is_formatted_again(
    node: Node, tmp_path: Path
) -> None:
    """The shim's mkfs.xfs keeps the superblock and loses the rest, then the run is killed: the volume now
    probes as xfs, which without the mark would be taken for a finished filesystem (ready, and the mount
    fails). The mark in META, written before mkfs started, names this partition and the UUID of that
    superblock: the next boot makes the filesystem again, and removes the mark."""
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    shim = shim_dir / "mkfs.xfs"
    shim.write_text(MKFS_SHIM.format(cut=shim_dir / "cut", mkfs=require_tool("mkfs.xfs")))
    shim.chmod(0o755)
    node.write_config(*UNENCRYPTED)

    output = await anyio.to_thread.run_sync(run_killed_in_mkfs, node, shim_dir)
    node.clean_up()  # the power cut
    assert "mounted" not in output
    marks = {m.volume_id: m for m in read_marks(meta_of(node))}
    assert marks, f"no mkfs mark in META after the kill:\n{output}"
    half_made = []
    for volume, mark in marks.items():
        assert mark.partition_uuid == partition_of(node, volume).partition_uuid()
        assert mark.filesystem == "xfs"
        found = probe(node.region(volume))
        if found is not None:  # the superblock of the killed mkfs: the case the mark is for
            assert found == ("xfs", mark.filesystem_uuid), volume
            half_made.append(volume)
    assert half_made, f"the killed mkfs left no signature: the test did not test the mark ({marks})"

    await anyio.to_thread.run_sync(run_to_the_end, node)
    assert read_marks(meta_of(node)) == []
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        for volume in ("STATE", "EPHEMERAL"):
            assert volume in boot.snapshot.mounted, describe(boot.snapshot)
            (node.target(volume) / "marker").write_text(f"{volume} after the power cut\n")
            found = probe(node.region(volume))
            assert found is not None
            assert found[0] == "xfs"
            if volume in marks:
                assert found[1] != marks[volume].filesystem_uuid  # a new filesystem, not the half-made one
    async with node.boot() as boot:  # a later boot keeps it: no mark, a finished filesystem
        assert boot.snapshot.ok, describe(boot.snapshot)
        for volume in ("STATE", "EPHEMERAL"):
            assert (node.target(volume) / "marker").read_text() == f"{volume} after the power cut\n"


@pytest.mark.parametrize("foreign_mark", [False, True], ids=["no-mark", "mark-of-another-mkfs"])
async def test_a_foreign_filesystem_is_refused_and_left_unchanged(node: Node, foreign_mark: bool) -> None:
    """EPHEMERAL holds somebody's ext4 where the config wants xfs. With no mark, or with a mark for this very
    partition whose filesystem UUID is not this filesystem's (volumed's mkfs was interrupted, then somebody
    made their own filesystem there), it is refused, not retried, and not one byte changes."""
    ephemeral = node.region("EPHEMERAL")
    payload = os.urandom(256 * 1024)
    put_filesystem(ephemeral, "ext4", str(node.workdir / "mnt"), payload)
    if foreign_mark:
        mark_mkfs(meta_of(node), partition_of(node, "EPHEMERAL"), "ext4", str(uuid.uuid4()))
    before = ephemeral.digest()
    node.write_config(*UNENCRYPTED)

    for _ in range(2):  # a reboot does not change the verdict
        async with node.boot() as boot:
            snapshot = boot.snapshot
            assert phases(snapshot) == {"STATE": "ready", "EPHEMERAL": "failed"}, describe(snapshot)
            status = status_of(snapshot, "EPHEMERAL")
            assert status.error_message == "filesystem type mismatch: ext4 != xfs"
            # The failed status shows how far the volume got: prepared, with the device mkfs would have used.
            assert status.pre_fail_phase == "prepared", describe(snapshot)
            assert status.location == str(ephemeral.path), describe(snapshot)
            assert status.mount_location, describe(snapshot)
            assert "EPHEMERAL" not in snapshot.mounted
            await anyio.sleep(1.0)  # not retried on the timer: nothing changed
            assert phases(await boot.now())["EPHEMERAL"] == "failed"
        assert ephemeral.digest() == before
    assert read_payload(ephemeral, str(node.workdir / "mnt")) == payload


async def test_a_foreign_filesystem_of_the_wanted_type_is_adopted_not_formatted(node: Node) -> None:
    """Somebody's xfs on EPHEMERAL, and a mark for that partition from an mkfs of volumed's that never
    finished (another filesystem UUID): it is the wanted type, so it is used as it is — its UUID and data
    stay."""
    ephemeral = node.region("EPHEMERAL")
    payload = os.urandom(64 * 1024)
    put_filesystem(ephemeral, "xfs", str(node.workdir / "mnt"), payload)
    mark_mkfs(meta_of(node), partition_of(node, "EPHEMERAL"), "xfs", str(uuid.uuid4()))
    before = probe(ephemeral)
    node.write_config(*UNENCRYPTED)

    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        assert (node.target("EPHEMERAL") / "payload").read_bytes() == payload
    assert probe(ephemeral) == before
