"""The Mounter when something else is mounted at a volume's target (real mounts): one one-line warning per
conflict (again only when it changes), no traceback on every retry, and the mount once the target is free."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from structlog.testing import capture_logs

from tests._tools import require_tool
from volumed.controllers.block._mounter import Mounter
from volumed.controllers.block._services import VolumeServices
from volumed.resources import (
    BLOCK,
    MountStatusDefinition,
    VolumeConfigDefinition,
    VolumeConfigSpec,
    VolumeMountRequestDefinition,
    VolumeMountRequestSpec,
    VolumePhase,
    VolumeStatusDefinition,
    VolumeStatusSpec,
)
from volumed.runtime import Kind, in_memory_state
from volumed.runtime.controller import BackoffPolicy, Runtime
from volumed.storage.filesystem import find_mount, umount

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from volumed.runtime import State

MIB = 1024 * 1024
RETRY = 0.01


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "root"
    (root / "var/mnt/data").mkdir(parents=True)
    yield root
    for target in (root / "var/mnt/data", root / "var/mnt/data"):  # the volume over a leftover tmpfs
        if find_mount(str(target)) is not None:
            umount(target, lazy=True)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "data.img"
    with path.open("wb") as f:
        f.truncate(16 * MIB)
    subprocess.run([require_tool("mkfs.ext4"), "-q", "-F", str(path)], check=True)
    return path


def tmpfs(target: Path, name: str) -> None:
    subprocess.run([require_tool("mount"), "-t", "tmpfs", name, str(target)], check=True)


async def reconciles(runtime: Runtime, more: int) -> None:
    """Wait until the Mounter has reconciled ``more`` more times (it retries every RETRY seconds)."""
    start = runtime.stats()["Mounter"].reconciles
    with anyio.fail_after(30):
        while runtime.stats()["Mounter"].reconciles < start + more:  # noqa: ASYNC110 (counters, no event)
            await anyio.sleep(RETRY)


async def add_volume(state: State, image: Path) -> None:
    await state.create(
        VolumeConfigDefinition.new(
            "data", VolumeConfigSpec(partition_label="data", mount_target="/var/mnt/data")
        )
    )
    await state.create(
        VolumeStatusDefinition.new(
            "data",
            VolumeStatusSpec(phase=VolumePhase.READY, mount_location=str(image), filesystem="ext4"),
        )
    )
    await state.create(
        VolumeMountRequestDefinition.new(
            "data-volumed", VolumeMountRequestSpec(volume_id="data", requester="volumed")
        )
    )


def conflict_logs(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in logs if r.get("controller") == "Mounter" and r["log_level"] in ("warning", "error")]


async def test_a_mount_conflict_is_warned_once_per_change_without_traceback(
    root: Path, image: Path, tmp_path: Path
) -> None:
    target = root / "var/mnt/data"
    tmpfs(target, "squatter")
    state = in_memory_state()
    services = VolumeServices(backend="fuse", root=root, runtime_dir=tmp_path / "run")
    runtime = Runtime(state, backoff=BackoffPolicy(initial=RETRY, jitter=0.0, maximum=RETRY))
    runtime.register(Mounter(services, retry_interval=RETRY))
    with capture_logs() as logs:
        async with runtime:
            await add_volume(state, image)
            await reconciles(runtime, 5)
            first = conflict_logs(logs)
            assert [(r["log_level"], r["event"]) for r in first] == [
                ("warning", "cannot mount data: something else is mounted at its target (retrying)")
            ]
            assert first[0]["error"] == (
                f"{target} is already a mount point of squatter (tmpfs), not {image}"
            )
            assert all("exception" not in r for r in logs)
            # No failure, and no write: a finalizer put on and taken off per retry would wake the Mounter
            # again at once (a busy loop) rather than after retry_interval.
            assert (runtime.stats()["Mounter"].errors, runtime.stats()["Mounter"].writes) == (0, 0)
            assert await state.list(Kind(BLOCK, MountStatusDefinition.type)) == []

            tmpfs(target, "another")  # the conflict changes: warned again, once
            await reconciles(runtime, 5)
            assert [r["error"] for r in conflict_logs(logs)[1:]] == [
                f"{target} is already a mount point of another (tmpfs), not {image}"
            ]

            umount(target)  # "squatter" is back on top: the conflict changes again
            await reconciles(runtime, 5)
            umount(target)  # the target is free: the volume is mounted
            with anyio.fail_after(30):
                while not (mounts := await state.list(Kind(BLOCK, MountStatusDefinition.type))):  # noqa: ASYNC110
                    await anyio.sleep(RETRY)
            assert [m.spec.target for m in mounts] == [str(target)]
            assert [r["error"] for r in conflict_logs(logs)[2:]] == [
                f"{target} is already a mount point of squatter (tmpfs), not {image}"
            ]
            assert any(r["event"] == "mounted" for r in logs)
            assert any(r["event"] == "the mount conflict of data is gone" for r in logs)
