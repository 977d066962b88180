"""A mount volumed made and someone else unmounted is mounted again at the Mounter's next pass (review50 F3).

Before, the Mounter kept its record of the mount: MountStatus said the volume was mounted while nothing was,
also after the volume had been activated again on a new device, and nothing mounted it again until a restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from structlog.testing import capture_logs

from tests.controllers.block._volume_runtime import volume_runtime
from volumed.resources import (
    BLOCK,
    MountStatusDefinition,
    VolumeConfigDefinition,
    VolumeConfigSpec,
    VolumePhase,
    VolumeStatusDefinition,
)
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_resource
from volumed.storage import disklayout
from volumed.storage.filesystem import find_mount, umount

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024
WAIT = 60.0


async def test_a_mount_unmounted_by_someone_else_is_made_again(tmp_path: Path) -> None:
    image = tmp_path / "node.img"
    disklayout.create_disk_image(image, 256 * MIB, state_size=64 * MIB)
    target = tmp_path / "root" / "system/state"
    with capture_logs() as logs:
        async with volume_runtime(image, tmp_path) as runtime:
            state = runtime.state
            spec = VolumeConfigSpec(partition_label="STATE", filesystem="ext4", mount_target="/system/state")
            await state.create(VolumeConfigDefinition.new("STATE", spec), owner="test")
            mounted = Pointer(BLOCK, MountStatusDefinition.type, "STATE-volumed")
            await assert_resource(state, mounted, within=WAIT)
            assert find_mount(target) is not None

            await anyio.to_thread.run_sync(umount, target)  # the admin
            # any change wakes the Mounter: here a second volume
            other = VolumeConfigSpec(partition_label="EPHEMERAL", filesystem="ext4", mount_target="/var")
            await state.create(VolumeConfigDefinition.new("EPHEMERAL", other), owner="test")
            await assert_resource(
                state,
                Pointer(BLOCK, VolumeStatusDefinition.type, "EPHEMERAL"),
                lambda r: r.spec.phase == VolumePhase.READY,
                within=WAIT,
            )
            await assert_resource(state, Pointer(BLOCK, MountStatusDefinition.type, "EPHEMERAL-volumed"))
            with anyio.fail_after(WAIT):
                while find_mount(target) is None:  # noqa: ASYNC110 (the kernel's table: nothing to wait on)
                    await anyio.sleep(0.02)
            status = await assert_resource(state, mounted)
            assert status.spec.target == str(target)
    events = [r["event"] for r in logs]
    assert any("STATE is no longer mounted at" in e and "mounting it again" in e for e in events), events
    assert events.count("mounted") >= 3  # STATE twice, EPHEMERAL
