"""A power cut during the mkfs of an unencrypted whole-disk volume (UserVolumeConfig ``volumeType: disk``):
the mark in META names the disk and the filesystem UUID, so the next boot makes the filesystem again; a copy
of that half-made disk put in its place (another disk, the same bytes) has no mark of its own and is never
formatted.

The cut is the mkfs.xfs shim of test_kill_9 (the superblock written, the rest lost, then killed), applied only
to the disk volume's mkfs (its label): STATE and EPHEMERAL are made normally.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from functools import partial
from typing import TYPE_CHECKING, Final

import anyio.to_thread

from tests._tools import require_tool
from tests.system.lifecycle._node import describe, phases, status_of, volume_config
from tests.system.lifecycle.test_disk_volume import blkid, disk_volume_config, whole_disk
from tests.system.lifecycle.test_kill_9 import RUN_LIMIT, kill_group
from volumed.controllers.block._mkfs_mark import read_marks
from volumed.storage.meta import MetaPartition

if TYPE_CHECKING:
    from pathlib import Path

    from tests.system.lifecycle._node import Node

LABEL: Final = "u-whole"  # what volumed gives mkfs as the label (the volume id)

# mkfs.xfs that, for the disk volume only, keeps the superblock and loses the rest, then hangs until killed
SHIM: Final = """#!/bin/sh
for last; do :; done
case " $* " in
  *" -L {label} "*) ;;
  *) exec {mkfs} "$@" ;;
esac
{mkfs} "$@" || exit $?
dd if=/dev/zero of="$last" bs=512 seek=1 count=8191 conv=notrunc 2>/dev/null
sync
touch "{started}"
exec sleep 60
"""


def meta_of(node: Node) -> MetaPartition:
    region = node.region("META")
    return MetaPartition(region.path, offset=region.offset)


def argv(node: Node, disk: Path, *, timeout: float = 60.0) -> list[str]:
    return [*node.run_argv(timeout=timeout), "--disk", str(disk)]


def run_killed_in_disk_mkfs(node: Node, disk: Path, shim_dir: Path) -> str:
    """`volumed run` with the shim first on PATH, killed (with its children) once the disk's mkfs is cut."""
    started = shim_dir / "started"
    env = dict(os.environ, PATH=f"{shim_dir}:{os.environ['PATH']}")
    output = node.workdir / "killed-run.log"
    with output.open("w") as log:
        process = subprocess.Popen(
            argv(node, disk), stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, text=True,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not started.exists():  # the shim touches it once the cut is on the disk
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, (
                f"the disk's mkfs.xfs did not run within 60 s:\n{output.read_text()}"
            )
            time.sleep(0.02)
    finally:
        kill_group(process)
        process.wait(timeout=10)
    return output.read_text()


def run(node: Node, disk: Path, *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv(node, disk, timeout=timeout), capture_output=True, text=True, timeout=RUN_LIMIT, check=False
    )


async def test_power_cut_during_whole_disk_mkfs_is_formatted_again_and_a_copy_is_not(
    node: Node, tmp_path: Path
) -> None:
    disk = whole_disk(node)
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    shim = shim_dir / "mkfs.xfs"
    shim.write_text(SHIM.format(label=LABEL, started=shim_dir / "started", mkfs=require_tool("mkfs.xfs")))
    shim.chmod(0o755)
    node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"), disk_volume_config("whole"))

    output = await anyio.to_thread.run_sync(run_killed_in_disk_mkfs, node, disk, shim_dir)
    node.clean_up()  # the power cut
    marks = [m for m in read_marks(meta_of(node)) if m.volume_id == LABEL]
    assert len(marks) == 1, f"no mkfs mark for the disk volume in META after the kill ({marks}):\n{output}"
    (mark,) = marks
    assert (mark.partition_uuid, mark.filesystem) == ("", "xfs")
    assert mark.disk  # named by the disk's identity, not by a partition
    half_made = blkid(disk, "UUID")
    assert (blkid(disk, "TYPE"), half_made) == ("xfs", mark.filesystem_uuid)  # what the mark is for

    # Another disk in its place holding the same half-made bytes: no mark names it, so it is never formatted
    # (its superblock stays the half-made one; the kernel's failed mount attempts may write to it).
    copy = node.workdir / "copy.img"
    shutil.copyfile(disk, copy)
    disk.rename(node.workdir / "away.img")
    result = await anyio.to_thread.run_sync(partial(run, node, copy, timeout=10.0))
    node.clean_up()
    output = result.stdout + result.stderr
    assert result.returncode != 0, "a run with a half-made filesystem nobody marked cannot settle mounted"
    # STATE's or EPHEMERAL's mkfs may have been cut by the same kill (they run alongside): making those
    # again is right; only the disk volume's filesystem must be left alone.
    assert [line for line in output.splitlines() if "mkfs" in line and LABEL in line] == [], output
    assert (blkid(copy, "TYPE"), blkid(copy, "UUID")) == ("xfs", half_made)
    assert [m for m in read_marks(meta_of(node)) if m.volume_id == LABEL] == [mark]  # the mark stays
    copy.unlink()
    (node.workdir / "away.img").rename(disk)

    result = await anyio.to_thread.run_sync(run, node, disk)
    node.clean_up()
    assert result.returncode == 0, (
        f"the run after the cut did not converge:\n{result.stdout}\n{result.stderr}"
    )
    assert "an earlier mkfs was interrupted; making the filesystem again" in result.stdout + result.stderr
    assert [m for m in read_marks(meta_of(node)) if m.volume_id == LABEL] == []
    made = blkid(disk, "UUID")
    assert blkid(disk, "TYPE") == "xfs"
    assert made not in ("", half_made)

    target = node.root / "var" / "mnt" / "whole"
    async with node.boot(disks=[*node.disks, str(disk)]) as boot:
        assert phases(boot.snapshot)["u-whole"] == "ready", describe(boot.snapshot)
        assert status_of(boot.snapshot, "u-whole").location == str(disk)
        (target / "kept").write_bytes(b"after the cut")
    async with node.boot(disks=[*node.disks, str(disk)]) as boot:  # a finished filesystem, no mark: kept
        assert (target / "kept").read_bytes() == b"after the cut"
    assert blkid(disk, "UUID") == made
