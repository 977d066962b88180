"""A ready volume is mounted while a slower volume of the same VolumeFormatter pass is still on its way
(issue 16: boot overhead on the critical path).

Before, the VolumeFormatter published the VolumeStatus of every volume of a pass only when the whole pass
ended, so the Mounter mounted a ready volume only once the slowest one (a KDF, an mkfs) was done. Here
EPHEMERAL's mkfs is held at a gate until STATE is mounted: before the fix STATE's status never came while
EPHEMERAL was held, and the wait for STATE's MountStatus timed out.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import anyio
from structlog.testing import capture_logs

from tests.controllers.block._volume_runtime import volume_runtime
from volumed.controllers.block import _formatter
from volumed.controllers.block._mounter import Mounter, MountRequester
from volumed.controllers.block._services import VolumeServices
from volumed.resources import (
    BLOCK,
    MountStatusDefinition,
    VolumeConfigDefinition,
    VolumeConfigSpec,
    VolumePhase,
    VolumeStatusDefinition,
    VolumeStatusSpec,
)
from volumed.runtime import Kind, Pointer, in_memory_state
from volumed.runtime.controller import BackoffPolicy, Runtime
from volumed.runtime.testing import assert_resource
from volumed.storage import disklayout
from volumed.storage.filesystem import find_mount

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from volumed.runtime import State

MIB = 1024 * 1024
RETRY = 0.01
WAIT = 60.0  # a bound on each wait, never reached when it works (the gate makes the order)


async def test_a_ready_volume_is_mounted_before_a_slower_sibling_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = tmp_path / "node.img"
    disklayout.create_disk_image(image, 256 * MIB, state_size=64 * MIB)
    held, release = threading.Event(), threading.Event()
    make_filesystem = _formatter.make_filesystem

    def gated_mkfs(device: str, filesystem: str, **options: Any) -> None:
        if options.get("label") == "EPHEMERAL":  # a worker thread: held until the test releases it
            held.set()
            release.wait(WAIT)
        make_filesystem(device, filesystem, **options)

    monkeypatch.setattr(_formatter, "make_filesystem", gated_mkfs)
    async with volume_runtime(image, tmp_path) as runtime:
        try:
            await _mount_state_while_ephemeral_is_held(runtime.state, tmp_path / "root", held, release)
        finally:
            release.set()  # a failed assertion must not leave the mkfs thread (and the runtime) held


async def _mount_state_while_ephemeral_is_held(
    state: State, root: Path, held: threading.Event, release: threading.Event
) -> None:
    for volume_id, target in (("STATE", "/system/state"), ("EPHEMERAL", "/var")):
        config = VolumeConfigSpec(partition_label=volume_id, filesystem="ext4", mount_target=target)
        await state.create(VolumeConfigDefinition.new(volume_id, config), owner="test")

    await assert_resource(state, Pointer(BLOCK, MountStatusDefinition.type, "STATE-volumed"), within=WAIT)
    assert held.is_set()  # EPHEMERAL's mkfs is still held: STATE was mounted in the same pass
    assert not release.is_set()
    assert find_mount(root / "system/state") is not None
    assert find_mount(root / "var") is None
    status = await state.get(Pointer(BLOCK, VolumeStatusDefinition.type, "EPHEMERAL"))
    assert status.spec.phase == VolumePhase.WAITING, status  # the last pass' (disk discovery): nothing newer

    release.set()
    ephemeral = await assert_resource(
        state,
        Pointer(BLOCK, VolumeStatusDefinition.type, "EPHEMERAL"),
        lambda r: r.spec.phase == VolumePhase.READY,
        within=WAIT,
    )
    assert ephemeral.spec.filesystem == "ext4"
    await assert_resource(state, Pointer(BLOCK, MountStatusDefinition.type, "EPHEMERAL-volumed"), within=WAIT)
    assert find_mount(root / "var") is not None


async def test_a_child_published_before_its_parent_logs_the_parents_later_phase(tmp_path: Path) -> None:
    """A child's status may now come before its parent's (each is published as its attempt ends): the wait is
    logged while the parent is not published, and again with the parent's phase once it is (failed)."""
    root = tmp_path / "root"
    state = in_memory_state()
    services = VolumeServices(backend="fuse", root=root, runtime_dir=tmp_path / "run")
    runtime = Runtime(state, backoff=BackoffPolicy(initial=RETRY, jitter=0.0, maximum=RETRY))
    runtime.register(MountRequester())
    runtime.register(Mounter(services, retry_interval=RETRY))
    parent = f"e-data waits for EPHEMERAL to be mounted at {root / 'var'}"
    with capture_logs() as logs:
        async with runtime:
            for volume_id, target in (("EPHEMERAL", "/var"), ("e-data", "/var/mnt/data")):
                config = VolumeConfigSpec(partition_label=volume_id, mount_target=target)
                await state.create(VolumeConfigDefinition.new(volume_id, config), owner="test")
            ready = VolumeStatusSpec(phase=VolumePhase.READY, mount_location="/dev/null", filesystem="ext4")
            await state.create(VolumeStatusDefinition.new("e-data", ready), owner="test")
            await _logged(logs, f"{parent} (EPHEMERAL: not published)")
            failed = VolumeStatusSpec(phase=VolumePhase.FAILED, error_message="block dev type mismatch")
            await state.create(VolumeStatusDefinition.new("EPHEMERAL", failed), owner="test")
            await _logged(logs, f"{parent} (EPHEMERAL: failed)")
            assert await state.list(Kind(BLOCK, MountStatusDefinition.type)) == []
    waits = [r["event"] for r in logs if "waits for" in r["event"]]
    assert waits == [f"{parent} (EPHEMERAL: not published)", f"{parent} (EPHEMERAL: failed)"]  # once each
    assert find_mount(root / "var/mnt/data") is None


async def _logged(logs: list[dict[str, Any]], event: str) -> None:
    with anyio.fail_after(WAIT):  # a bound, never reached when it works
        while event not in [r["event"] for r in logs]:  # noqa: ASYNC110
            await anyio.sleep(RETRY)
