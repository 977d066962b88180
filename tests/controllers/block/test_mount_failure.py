"""The Mounter when mounting a ready volume fails (its filesystem does not read: e.g. a partition shrunk
below its XFS): one one-line warning per distinct error, no traceback on every retry, and the mount once
the filesystem reads (real mounts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from structlog.testing import capture_logs

from tests._tools import require_tool
from tests.controllers.block.test_mount_conflict import add_volume, conflict_logs, reconciles
from volumed.controllers.block._mounter import Mounter
from volumed.controllers.block._services import VolumeServices
from volumed.resources import BLOCK, MountStatusDefinition
from volumed.runtime import Kind, in_memory_state
from volumed.runtime.controller import BackoffPolicy, Runtime
from volumed.storage.filesystem import find_mount, umount

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024
RETRY = 0.01


async def test_a_failing_mount_is_warned_once_per_error_without_traceback(tmp_path: Path) -> None:
    root = tmp_path / "root"
    target = root / "var/mnt/data"
    target.mkdir(parents=True)
    image = tmp_path / "data.img"
    with image.open("wb") as f:
        f.truncate(16 * MIB)  # no filesystem: the ext4 mount fails
    state = in_memory_state()
    services = VolumeServices(backend="fuse", root=root, runtime_dir=tmp_path / "run")
    runtime = Runtime(state, backoff=BackoffPolicy(initial=RETRY, jitter=0.0, maximum=RETRY))
    runtime.register(Mounter(services, retry_interval=RETRY))
    try:
        with capture_logs() as logs:
            async with runtime:
                await add_volume(state, image)
                await reconciles(runtime, 6)
                warned = conflict_logs(logs)
                assert [(r["log_level"], r["event"]) for r in warned] == [
                    ("warning", "cannot mount data (retrying)")
                ]
                assert "mount failed" in warned[0]["error"]
                assert all("exception" not in r for r in logs)
                assert runtime.stats()["Mounter"].errors == 0
                assert await state.list(Kind(BLOCK, MountStatusDefinition.type)) == []

                await anyio.run_process([require_tool("mkfs.ext4"), "-q", "-F", str(image)])
                with anyio.fail_after(30):
                    while not await state.list(Kind(BLOCK, MountStatusDefinition.type)):  # noqa: ASYNC110
                        await anyio.sleep(RETRY)
                assert len(conflict_logs(logs)) == 1
                assert any(r["event"] == "data mounts again" for r in logs)
    finally:
        if find_mount(str(target)) is not None:
            umount(target, lazy=True)
