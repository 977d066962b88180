"""A pass that attempts a failed volume again publishes its statuses together (review40 F1).

Each volume's status is published as soon as its attempt ends (issue 16), but a failed volume's old status
looks settled: a volume that turned ready in the same pass, published while the failed one was being retried,
made `--once` end on the old failure (exit 6) while the retry was about to succeed. Here STATE's first mkfs
fails; the pass that EPHEMERAL's mount starts retries STATE (its mkfs held at a gate) while a directory volume
on EPHEMERAL turns ready: before the fix the boot looked settled with STATE failed.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import anyio

from tests.controllers.block._volume_runtime import volume_runtime
from volumed.controllers._convergence import convergence
from volumed.controllers.block import _formatter
from volumed.resources import (
    BLOCK,
    MountStatusDefinition,
    VolumeConfigDefinition,
    VolumeConfigSpec,
    VolumePhase,
    VolumeStatusDefinition,
    VolumeType,
)
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_resource
from volumed.storage import disklayout
from volumed.storage.filesystem import FilesystemError

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from volumed.runtime import State

MIB = 1024 * 1024
WAIT = 60.0  # a bound on each wait, never reached when it works (the gate makes the order)
SETTLE_LOOK = 1.0  # how long the held retry is watched for a boot that looks settled (a slow machine: longer)


async def test_a_retried_failure_is_not_settled_beside_a_new_ready_volume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = tmp_path / "node.img"
    disklayout.create_disk_image(image, 256 * MIB, state_size=64 * MIB)
    held, release = threading.Event(), threading.Event()
    attempts = 0
    make_filesystem = _formatter.make_filesystem

    def failing_then_held_mkfs(device: str, filesystem: str, **options: Any) -> None:
        nonlocal attempts
        if options.get("label") == "STATE":  # a worker thread
            attempts += 1
            if attempts == 1:
                raise FilesystemError("mkfs.ext4 failed (the test's first attempt)")
            held.set()
            release.wait(WAIT)
        make_filesystem(device, filesystem, **options)

    monkeypatch.setattr(_formatter, "make_filesystem", failing_then_held_mkfs)
    async with volume_runtime(image, tmp_path) as runtime:
        try:
            await _retry_state_while_a_directory_turns_ready(runtime.state, held, release)
        finally:
            release.set()  # a failed assertion must not leave the mkfs thread (and the runtime) held


async def _retry_state_while_a_directory_turns_ready(
    state: State, held: threading.Event, release: threading.Event
) -> None:
    configs = {
        "STATE": VolumeConfigSpec(partition_label="STATE", filesystem="ext4", mount_target="/system/state"),
        "EPHEMERAL": VolumeConfigSpec(partition_label="EPHEMERAL", filesystem="ext4", mount_target="/var"),
        "u-dir": VolumeConfigSpec(
            partition_label="", volume_type=VolumeType.DIRECTORY, mount_target="/var/mnt/dir"
        ),
    }
    for volume_id, config in configs.items():
        await state.create(VolumeConfigDefinition.new(volume_id, config), owner="test")

    with anyio.fail_after(WAIT):
        while not held.is_set():  # noqa: ASYNC110 (a worker thread sets it)
            await anyio.sleep(0.01)
    # STATE's retry is under way (EPHEMERAL's mount started this pass); the directory turns ready in it
    with anyio.move_on_after(SETTLE_LOOK):
        while True:
            snapshot = await convergence(state)
            assert not snapshot.settled, f"settled on STATE's old failure while it is retried: {snapshot}"
            await anyio.sleep(0.02)

    release.set()
    for volume_id in configs:
        await assert_resource(
            state,
            Pointer(BLOCK, VolumeStatusDefinition.type, volume_id),
            lambda r: r.spec.phase == VolumePhase.READY,
            within=WAIT,
        )
    await assert_resource(state, Pointer(BLOCK, MountStatusDefinition.type, "u-dir-volumed"), within=WAIT)
    assert (await convergence(state)).settled
