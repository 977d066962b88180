"""At shutdown a volume's loop device is detached only while it still maps the volume's image file (review50
F2): the admin detached it and another program attached its own image to the freed number (``losetup -f``
takes the lowest free one), and volumed's shutdown detached the other program's device."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import anyio
from structlog.testing import capture_logs

from tests._tools import require_root, require_tool
from volumed.controllers.block._services import VolumeServices
from volumed.storage import loop

if TYPE_CHECKING:
    from pathlib import Path

MiB = 1 << 20


def _image(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


async def test_shutdown_leaves_another_programs_device_on_the_number_alone(tmp_path: Path) -> None:
    require_root()
    require_tool("losetup")
    disk = _image(tmp_path / "disk.img", 16 * MiB)
    victim = _image(tmp_path / "victim.img", MiB)
    services = VolumeServices(backend="fuse", root=tmp_path / "root", runtime_dir=tmp_path / "run")
    try:
        device = await services.loop_for("u-plain", str(disk), MiB, 8 * MiB)
        await anyio.run_process(["losetup", "-d", device])  # the admin
        await anyio.run_process(["losetup", device, str(victim)])  # the other program, on that number
        with capture_logs() as logs:
            await services.close_all()
        found = loop.read_loop_device(device)
        assert found is not None
        assert found.backing_file == str(victim)
        assert any(r["event"] == "loop device left alone at shutdown" for r in logs), logs
        assert services.loops == {}
    finally:
        for attached in loop.find_attachments(victim) + loop.find_attachments(disk):
            with contextlib.suppress(loop.LoopError):
                loop.detach(attached)


async def test_shutdown_detaches_the_volumes_own_device(tmp_path: Path) -> None:
    require_root()
    disk = _image(tmp_path / "disk.img", 16 * MiB)
    services = VolumeServices(backend="fuse", root=tmp_path / "root", runtime_dir=tmp_path / "run")
    try:
        device = await services.loop_for("u-plain", str(disk), MiB, 8 * MiB)
        await services.close_all()
        assert loop.read_loop_device(device) is None
    finally:
        for attached in loop.find_attachments(disk):
            with contextlib.suppress(loop.LoopError):
                loop.detach(attached)
