"""The Mounter mounts a volume below another configured volume's target only once that one is mounted
(review 22 F3, real mounts).

An existing volume is ready long before EPHEMERAL (no provisioning); the Mounter waited only for parents that
were ready, so /var/mnt/<name> was mounted first, then hidden when EPHEMERAL was mounted over /var.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

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
from volumed.runtime import Kind, Pointer, in_memory_state
from volumed.runtime.controller import BackoffPolicy, Runtime
from volumed.storage.filesystem import find_mount, umount

if TYPE_CHECKING:
    from collections.abc import Iterator

    from volumed.runtime import State

MIB = 1024 * 1024
RETRY = 0.01


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "root"
    root.mkdir()
    yield root
    for target in (root / "var/mnt/data", root / "var", root / "var/mnt/data"):
        while find_mount(str(target)) is not None:
            umount(target, lazy=True)


def ext4_image(path: Path) -> Path:
    with path.open("wb") as f:
        f.truncate(16 * MIB)
    subprocess.run([require_tool("mkfs.ext4"), "-q", "-F", str(path)], check=True)
    return path


async def configure(state: State, volume_id: str, target: str, status: VolumeStatusSpec) -> None:
    await state.create(
        VolumeConfigDefinition.new(
            volume_id, VolumeConfigSpec(partition_label=volume_id, mount_target=target)
        )
    )
    await state.create(VolumeStatusDefinition.new(volume_id, status))
    await state.create(
        VolumeMountRequestDefinition.new(
            f"{volume_id}-volumed", VolumeMountRequestSpec(volume_id=volume_id, requester="volumed")
        )
    )


def mount_ids(target: Path) -> tuple[int, int]:
    """The (mount id, parent mount id) of the topmost mount at ``target``."""
    found = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(target):
            found = (int(fields[0]), int(fields[1]))
    assert found is not None, f"{target} is not mounted"
    return found


async def test_a_ready_child_waits_for_its_parent_volume_not_yet_ready(root: Path, tmp_path: Path) -> None:
    data, var = ext4_image(tmp_path / "data.img"), ext4_image(tmp_path / "var.img")
    state = in_memory_state()
    services = VolumeServices(backend="fuse", root=root, runtime_dir=tmp_path / "run")
    runtime = Runtime(state, backoff=BackoffPolicy(initial=RETRY, jitter=0.0, maximum=RETRY))
    runtime.register(Mounter(services, retry_interval=RETRY))
    with capture_logs() as logs:
        async with runtime:
            await configure(state, "EPHEMERAL", "/var", VolumeStatusSpec(phase=VolumePhase.WAITING))
            await configure(
                state,
                "e-data",
                "/var/mnt/data",
                VolumeStatusSpec(phase=VolumePhase.READY, mount_location=str(data), filesystem="ext4"),
            )
            with anyio.fail_after(30):  # either it is mounted (wrongly) or it says what it waits for
                while find_mount(root / "var/mnt/data") is None and not any(  # noqa: ASYNC110
                    "waits for" in r["event"] for r in logs
                ):
                    await anyio.sleep(RETRY)
            assert find_mount(root / "var/mnt/data") is None  # not under /var before EPHEMERAL is there
            assert await state.list(Kind(BLOCK, MountStatusDefinition.type)) == []
            waits = [r["event"] for r in logs if "waits for" in r["event"]]
            assert waits == [
                f"e-data waits for EPHEMERAL to be mounted at {root / 'var'} (EPHEMERAL: waiting)"
            ]

            ready = VolumeStatusSpec(phase=VolumePhase.READY, mount_location=str(var), filesystem="ext4")
            await state.update_with_conflicts(
                Pointer(BLOCK, VolumeStatusDefinition.type, "EPHEMERAL"), lambda r: r.with_spec(ready)
            )
            with anyio.fail_after(30):
                while len(await state.list(Kind(BLOCK, MountStatusDefinition.type))) < 2:  # noqa: ASYNC110
                    await anyio.sleep(RETRY)
            var_id, _ = mount_ids(root / "var")
            _, data_parent = mount_ids(root / "var/mnt/data")
            assert data_parent == var_id  # on EPHEMERAL's /var: visible

            # teardown: the child first, then its parent
            for request in ("e-data-volumed", "EPHEMERAL-volumed"):
                await state.destroy(Pointer(BLOCK, VolumeMountRequestDefinition.type, request))
            with anyio.fail_after(30):
                while await state.list(Kind(BLOCK, MountStatusDefinition.type)):  # noqa: ASYNC110
                    await anyio.sleep(RETRY)
    unmounted = [r["target"] for r in logs if r["event"] == "unmounted"]
    assert unmounted == [str(root / "var/mnt/data"), str(root / "var")]
    assert find_mount(root / "var") is None
