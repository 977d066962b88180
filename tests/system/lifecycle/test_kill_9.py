"""kill -9 of `volumed run` at random points of a first boot and of key rotations; after each kill the node
"reboots" (mounts, loop devices and FUSE servers cleared, as power loss would) and the next run must converge:
every volume ready, no key locked out, no data lost.

The kill points are log lines of the run (so they land in the phases that matter: format, mkfs, provisioning,
key-slot sync) plus a random delay; the seed is in every failure message.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import anyio.to_thread

from tests._tools import require_tool
from tests.system.lifecycle._node import (
    Node,
    cryptsetup_opens,
    describe,
    luks_slots,
    node_id_key,
    static_key,
    status_of,
    user_volume_config,
    volume_config,
)
from volumed.storage.gpt import read_partition_table

if TYPE_CHECKING:
    from pathlib import Path

SEED = int(os.environ.get("VOLUMED_KILL_SEED", random.randrange(1 << 32)))
RUN_LIMIT = 90.0


@dataclass(frozen=True)
class KillPoint:
    """Kill ``jitter`` seconds after the ``occurrence``-th log line containing ``after``."""

    after: str
    jitter: float
    occurrence: int = 1

    def __str__(self) -> str:
        return f"{self.jitter:.3f} s after {self.after!r} #{self.occurrence} (seed {SEED})"


def run_and_kill(node: Node, point: KillPoint, *, once: bool = True) -> tuple[bool, str]:
    """Start `volumed run` (``--once`` by default) and SIGKILL it at ``point``; returns (killed, output)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        node.run_argv(once=once),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    seen = 0
    try:
        for line in process.stdout:
            lines.append(line)
            if point.after in line:
                seen += 1
                if seen == point.occurrence:
                    time.sleep(point.jitter)
                    kill_group(process)
                    break
        process.wait(timeout=RUN_LIMIT)
    finally:
        kill_group(process)
        process.wait(timeout=10)
        process.stdout.close()
    return process.returncode == -signal.SIGKILL, "".join(lines)


def kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL `volumed run` and the tools it is running (mkfs, ...): its own process group, by PID.

    The FUSE servers run in sessions of their own and survive, as mounts do; `Node.clean_up` clears them.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def run_to_the_end(node: Node) -> None:
    """The run after the "reboot": it must settle with every volume ready (exit 0)."""
    result = subprocess.run(node.run_argv(), capture_output=True, text=True, timeout=RUN_LIMIT, check=False)
    assert result.returncode == 0, (
        f"the run after the kill did not converge:\n{result.stdout}\n{result.stderr}"
    )


FIRST_BOOT_CONFIG = (
    volume_config("STATE", [node_id_key(0)]),
    volume_config("EPHEMERAL", [node_id_key(0)]),
    user_volume_config("data", [static_key(0, "user-secret", lock=True)]),
)


def first_boot_points(rng: random.Random) -> list[KillPoint]:
    return [
        KillPoint("formatting and encrypting volume", 0.0),  # STATE mid-format
        KillPoint("formatting and encrypting volume", rng.uniform(0.0, 0.05)),
        KillPoint("mounted", 0.0),  # STATE mounted (salt being written), EPHEMERAL formatting
        KillPoint("formatting and encrypting volume", 0.0, occurrence=3),  # the user volume, just provisioned
        KillPoint("mounted", rng.uniform(0.0, 0.1), occurrence=2),  # mkfs of the user volume
        KillPoint("runtime started", rng.uniform(0.0, 1.0)),
        KillPoint("runtime started", rng.uniform(0.0, 1.0)),
    ]


async def test_kill_9_during_first_boot(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    for number, point in enumerate(first_boot_points(rng)):
        node = Node.create(tmp_path / f"node{number}")
        node.write_config(*FIRST_BOOT_CONFIG)
        try:
            killed, output = await anyio.to_thread.run_sync(run_and_kill, node, point)
            node.clean_up()  # the reboot
            await anyio.to_thread.run_sync(run_to_the_end, node)
            async with node.boot() as boot:
                assert boot.snapshot.ok, f"{point}: {describe(boot.snapshot)}"
                for volume in ("STATE", "EPHEMERAL", "u-data"):
                    status = status_of(boot.snapshot, volume)
                    assert (status.encryption_slot, status.encryption_failed_syncs) == (0, ()), f"{point}"
                    assert luks_slots(node.region(volume)) == [0], f"{point}: {volume}"
            names = [p.name for p in read_partition_table(node.data_disk).partitions]
            assert names == ["u-data"], f"{point}: partitions on the data disk: {names}"
            assert cryptsetup_opens(node.region("STATE"), f"{node.node_uuid}STATE".encode(), slot=0)
            print(f"kill {point}: killed={killed}, last line: {output.strip().splitlines()[-1:]}")
        finally:
            node.clean_up()


# Each step keeps one key of the previous one (the seed doc's rule), alternating add and remove.
KEY_SETS: list[dict[int, str]] = [
    {0: "k0"},
    {0: "k0", 1: "k1"},
    {1: "k1"},
    {1: "k1", 0: "k2"},
    {0: "k2"},
    {0: "k2", 1: "k3"},
    {1: "k3"},
]


def rotation_config(node: Node, keys: dict[int, str]) -> None:
    node.write_config(
        volume_config("STATE", [node_id_key(0)]),
        volume_config("EPHEMERAL", [static_key(slot, key) for slot, key in sorted(keys.items())]),
        user_volume_config(
            "data", [static_key(slot, f"u-{key}", lock=True) for slot, key in sorted(keys.items())]
        ),
    )


async def test_kill_9_during_key_rotation(node: Node) -> None:
    rng = random.Random(SEED)
    rotation_config(node, KEY_SETS[0])
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        for volume in ("STATE", "EPHEMERAL", "u-data"):
            (node.target(volume) / "marker").write_text(f"{volume} before the rotations\n")
    ephemeral, data = node.region("EPHEMERAL"), node.region("u-data")
    seen_at_kill: list[list[int]] = []
    for previous, keys in itertools.pairwise(KEY_SETS):
        rotation_config(node, keys)
        point = KillPoint("runtime started", rng.uniform(0.0, 0.25))
        await anyio.to_thread.run_sync(run_and_kill, node, point)
        node.clean_up()
        seen_at_kill.append(luks_slots(ephemeral))
        await anyio.to_thread.run_sync(run_to_the_end, node)
        assert luks_slots(ephemeral) == sorted(keys), f"{point}: rotation {previous} -> {keys}"
        assert luks_slots(data) == sorted(keys), f"{point}: rotation {previous} -> {keys}"
        for slot, key in keys.items():
            assert cryptsetup_opens(ephemeral, key.encode(), slot=slot), f"{point}: slot {slot} lost its key"
        for key in set(previous.values()) - set(keys.values()):
            assert not cryptsetup_opens(ephemeral, key.encode()), f"{point}: removed key {key} still opens"
    print(f"EPHEMERAL slots right after each kill: {seen_at_kill} (seed {SEED})")
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        for volume in ("STATE", "EPHEMERAL", "u-data"):
            assert (node.target(volume) / "marker").read_text() == f"{volume} before the rotations\n"


async def test_restart_without_reboot_adopts_live_volumes(node: Node) -> None:
    """`volumed run` killed and started again while its volumes stay active and mounted (no reboot in
    between): the new run re-opens the active volumes (Talos crashes there) and reuses the mounts, stacking
    nothing, and its shutdown then leaves nothing behind."""
    node.write_config(*FIRST_BOOT_CONFIG)
    # without --once: a run that stays up (with --once it starts unmounting as soon as all is mounted);
    # the third "mounted" event, not any line saying "mounted" ("u-data waits for EPHEMERAL to be mounted")
    killed, output = await anyio.to_thread.run_sync(
        partial(run_and_kill, node, KillPoint("] mounted ", 0.05, occurrence=3), once=False)
    )
    assert killed, output
    live = node.leftovers()
    assert sum(entry.startswith("fuse server") for entry in live) == 3, live
    (node.target("EPHEMERAL") / "marker").write_text("written between the runs\n")

    await anyio.to_thread.run_sync(run_to_the_end, node)
    assert node.leftovers() == []  # one unmount per mount was enough: nothing was mounted twice
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        assert (node.target("EPHEMERAL") / "marker").read_text() == "written between the runs\n"


MKFS_SHIM = """#!/bin/sh
# mkfs.xfs that loses its writes after the superblock (power cut mid-mkfs), then hangs until killed
for last; do :; done
{mkfs} "$@" || exit $?
dd if=/dev/zero of="$last" bs=512 seek=1 count=8191 conv=notrunc 2>/dev/null
sync
touch "{cut}"
exec sleep 60
"""


def run_killed_in_mkfs(node: Node, shim_dir: Path) -> str:
    """`volumed run` with the mkfs.xfs shim first on PATH, killed (with its children) once the shim's cut is
    on the disk (of the first volume to get there; another volume's mkfs may be cut anywhere)."""
    cut = shim_dir / "cut"
    env = dict(os.environ, PATH=f"{shim_dir}:{os.environ['PATH']}")
    with (node.workdir / "killed-run.log").open("w") as log:
        process = subprocess.Popen(
            node.run_argv(), stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, text=True,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not cut.exists():  # the shim touches it once its mkfs and dd are synced; it sleeps now
            assert process.poll() is None, (node.workdir / "killed-run.log").read_text()
            assert time.monotonic() < deadline, "no mkfs.xfs was cut within 60 s"
            time.sleep(0.02)
    finally:
        kill_group(process)
        process.wait(timeout=10)
    return (node.workdir / "killed-run.log").read_text()


async def test_power_cut_during_mkfs_is_formatted_again(node: Node, tmp_path: Path) -> None:
    """A power cut in the middle of mkfs leaves a filesystem signature on a filesystem that cannot be mounted
    ("Structure needs cleaning"). Probing alone would take it for a made filesystem and never mount STATE
    again — and every volume locked to STATE would wait for its salt forever. The interrupted mkfs must be
    recognised and done again (the volume held no data yet)."""
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    shim = shim_dir / "mkfs.xfs"
    shim.write_text(MKFS_SHIM.format(cut=shim_dir / "cut", mkfs=require_tool("mkfs.xfs")))
    shim.chmod(0o755)
    node.write_config(*FIRST_BOOT_CONFIG)

    output = await anyio.to_thread.run_sync(run_killed_in_mkfs, node, shim_dir)
    node.clean_up()
    assert "mounted" not in output
    await anyio.to_thread.run_sync(run_to_the_end, node)
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
