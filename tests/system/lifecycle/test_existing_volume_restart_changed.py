"""A `volumed run` killed with an existing volume mounted, its config changed, started again without a
reboot (review F3): the killed run's mount at /var/mnt/<name> is of another device than the new config wants
(mount.readOnly flipped: a read-write loop device where a read-only one is wanted; the selector moved to
another partition: a loop device over the old bytes). It is unmounted and its loop device detached when
nothing holds it, and the volume mounted anew; while it is held the volume fails, saying so, and claims no
device. The VolumeStatus and MountStatus name the device that is mounted; the stop leaves nothing behind.

Before the fix, a second loop device was attached, the VolumeStatus claimed it, and the mount of the old one
stayed at the target ("already a mount point of /dev/loopN ... not /dev/loopM", retried for ever)."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import anyio.to_thread
import pytest

from tests.system.lifecycle._node import describe, volume_config
from tests.system.lifecycle.test_existing_volume import (
    add_partition,
    existing_volume_config,
    put_ext4,
    target_of,
)
from tests.system.lifecycle.test_existing_volume_restart import _run_until_ready_then_kill, loops_over
from volumed.resources import BLOCK, MountStatusDefinition, MountStatusSpec, VolumePhase
from volumed.runtime import Pointer
from volumed.storage import loop
from volumed.storage.filesystem import find_mount

if TYPE_CHECKING:
    from pathlib import Path

    from tests.system.lifecycle._node import Booted, Node
    from volumed.controllers import Convergence


def _mounted_device(target: Path) -> tuple[int, int, bool]:
    """(major, minor, read-only) of the mount at ``target``."""
    mounted = find_mount(target)
    assert mounted is not None, f"nothing mounted at {target}"
    return mounted.major, mounted.minor, "ro" in mounted.options


def _device_number(device: str) -> tuple[int, int]:
    st = os.stat(device)
    assert stat.S_ISBLK(st.st_mode)
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def _ready_and_mounted(snapshot: Convergence) -> bool:
    status = snapshot.statuses.get("e-x")
    return status is not None and status.phase == VolumePhase.READY and "e-x" in snapshot.mounted


async def _assert_what_is_mounted_is_claimed(boot: Booted, node: Node, *, read_only: bool) -> str:
    """The device mounted at x's target is the VolumeStatus' and the MountStatus' (read-only as wanted)."""
    snapshot = await boot.now()
    claimed = snapshot.statuses["e-x"].mount_location
    major, minor, mounted_read_only = _mounted_device(target_of(node, "x"))
    assert (major, minor) == _device_number(claimed), describe(snapshot)
    assert mounted_read_only == read_only
    assert loop.read_loop_device(claimed) is not None
    assert loop.read_loop_device(claimed).read_only == read_only  # type: ignore[union-attr]
    shown = await boot.subsystem.state.get(Pointer(BLOCK, MountStatusDefinition.type, "e-x-volumed"))
    spec: MountStatusSpec = shown.spec
    assert spec.source == claimed
    assert spec.read_only == read_only
    return claimed


@pytest.mark.parametrize("change", ["read-only", "selector"])
async def test_a_restart_with_a_changed_config_replaces_the_left_mount(node: Node, change: str) -> None:
    one, two = add_partition(node, "p-one"), add_partition(node, "p-two")
    put_ext4(one, node.workdir, {"which": b"one"}, label="one")
    put_ext4(two, node.workdir, {"which": b"two"}, label="two")
    system = (volume_config("STATE"), volume_config("EPHEMERAL"))
    node.write_config(*system, existing_volume_config("x", 'volume.label == "one"'))
    await anyio.to_thread.run_sync(_run_until_ready_then_kill, node, "e-x")
    left = loops_over(one)
    assert len(left) == 1
    if change == "read-only":
        node.write_config(*system, existing_volume_config("x", 'volume.label == "one"', read_only=True))
        wanted, now = one, b"one"
    else:
        node.write_config(*system, existing_volume_config("x", 'volume.label == "two"'))
        wanted, now = two, b"two"
    async with node.boot(settle=False) as boot:
        await boot.wait_for(_ready_and_mounted, what="e-x ready and mounted")
        claimed = await _assert_what_is_mounted_is_claimed(boot, node, read_only=change == "read-only")
        assert (target_of(node, "x") / "which").read_bytes() == now
        assert loops_over(wanted) == [claimed]  # the old read-write device is detached
        if change == "selector":
            assert loops_over(one) == []
    # boot() asserts that the stop left nothing behind (EPHEMERAL unmounted, every loop device detached)


async def test_a_left_mount_in_use_fails_the_volume_until_it_is_released(node: Node) -> None:
    region = add_partition(node, "p-one")
    put_ext4(region, node.workdir, {"which": b"one"}, label="one")
    system = (volume_config("STATE"), volume_config("EPHEMERAL"))
    node.write_config(*system, existing_volume_config("x", 'volume.label == "one"'))
    await anyio.to_thread.run_sync(_run_until_ready_then_kill, node, "e-x")
    left = loops_over(region)
    assert len(left) == 1
    node.write_config(*system, existing_volume_config("x", 'volume.label == "one"', read_only=True))
    holder = os.open(target_of(node, "x") / "which", os.O_RDONLY)  # a workload still reading the old mount
    try:
        async with node.boot(settle=False) as boot:
            snapshot = await boot.wait_for(
                lambda s: "e-x" in s.statuses and s.statuses["e-x"].phase == VolumePhase.FAILED,
                what="e-x failed",
            )
            status = snapshot.statuses["e-x"]
            assert "in use" in status.error_message, status.error_message
            assert left[0] in status.error_message, status.error_message
            assert status.mount_location == ""  # no device claimed that is not mounted
            assert loops_over(region) == left  # no second loop device over the same bytes
            assert _mounted_device(target_of(node, "x"))[:2] == _device_number(left[0])
            os.close(holder)
            holder = -1
            await boot.wait_for(_ready_and_mounted, what="e-x ready and mounted once released")
            claimed = await _assert_what_is_mounted_is_claimed(boot, node, read_only=True)
            assert loops_over(region) == [claimed]
    finally:
        if holder >= 0:
            os.close(holder)


async def test_the_stop_unmounts_a_left_mount_still_waiting_to_be_replaced(node: Node) -> None:
    """Released after its volume failed, before the retry: the stop unmounts it (EPHEMERAL under it too)."""
    region = add_partition(node, "p-one")
    put_ext4(region, node.workdir, {"which": b"one"}, label="one")
    system = (volume_config("STATE"), volume_config("EPHEMERAL"))
    node.write_config(*system, existing_volume_config("x", 'volume.label == "one"'))
    await anyio.to_thread.run_sync(_run_until_ready_then_kill, node, "e-x")
    node.write_config(*system, existing_volume_config("x", 'volume.label == "one"', read_only=True))
    holder = os.open(target_of(node, "x") / "which", os.O_RDONLY)
    try:
        async with node.boot(settle=False, retry_interval=3600.0) as boot:
            await boot.wait_for(
                lambda s: "e-x" in s.statuses and s.statuses["e-x"].phase == VolumePhase.FAILED
                and "EPHEMERAL" in s.mounted,
                what="e-x failed, EPHEMERAL mounted",
            )  # fmt: skip
            os.close(holder)
            holder = -1
    finally:
        if holder >= 0:
            os.close(holder)
    # boot() asserts that the stop left nothing behind: the left mount, its loop device, EPHEMERAL
