"""Kernel uevents on real block devices: the uevent socket hears a loop device attached, and discovery of the
node's disks rescans on it without waiting for its poll.

This host's kernel has no device-mapper and no modules, so no disk that discovery publishes can be hot-added
here: a loop device with a backing file is skipped by discovery (volumed's own), so the test sees the rescan,
not a new Disk."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import anyio
import pytest

from tests._tools import require_root, require_tool
from volumed.controllers import DiscoveryController
from volumed.controllers.sources import Uevent, is_block_change, watch_uevents
from volumed.runtime.testing import run_runtime

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from volumed.runtime.controller import ControllerContext

NEVER = 3600.0  # discovery's poll interval here: a disk seen within seconds was found by a uevent
SOON = 10.0


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.img"
    with path.open("wb") as file:
        file.truncate(4 << 20)
    return path


def losetup(image: Path) -> str:
    argv = [require_tool("losetup"), "--find", "--show", str(image)]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def loop_devices() -> Iterator[list[str]]:
    """Loop devices a test attached, detached at its end."""
    require_root()
    attached: list[str] = []
    yield attached
    for device in attached:
        subprocess.run([require_tool("losetup"), "--detach", device], check=False)


async def test_the_uevent_socket_hears_a_loop_device_attached(image: Path, loop_devices: list[str]) -> None:
    heard: list[Uevent] = []
    new_event = anyio.Event()

    def accept(event: Uevent) -> bool:
        nonlocal new_event
        heard.append(event)
        new_event.set()
        new_event = anyio.Event()
        return is_block_change(event)

    subscribed = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch_uevents, accept, subscribed.set)
        await subscribed.wait()
        device = await anyio.to_thread.run_sync(losetup, image)
        loop_devices.append(device)
        name = os.path.basename(device)
        with anyio.fail_after(SOON):
            while not any(e.devname == name for e in heard):
                await new_event.wait()
        tg.cancel_scope.cancel()
    event = next(e for e in heard if e.devname == name)
    assert (event.action, event.subsystem) == (
        "change",
        "block",
    )  # loop devices exist before they are attached
    assert event.devpath == f"/devices/virtual/block/{name}"
    assert is_block_change(event)


class CountingDiscovery(DiscoveryController):
    """Counts its scans, to see a uevent wake it (a loop device is no disk of the node: nothing new is
    published)."""

    def __init__(self) -> None:
        super().__init__((), interval=NEVER)
        self.runs = 0
        self.ran = anyio.Event()

    async def reconcile(self, ctx: ControllerContext) -> None:
        await super().reconcile(ctx)
        self.runs += 1
        self.ran.set()

    async def reconciled(self, runs: int) -> None:
        with anyio.fail_after(SOON):
            while self.runs < runs:
                self.ran = anyio.Event()
                await self.ran.wait()


async def test_discovery_of_node_disks_rescans_on_a_block_uevent(
    image: Path, loop_devices: list[str]
) -> None:
    discovery = CountingDiscovery()
    async with run_runtime(discovery) as runtime:
        await discovery.reconciled(1)
        await anyio.wait_all_tasks_blocked()
        before = discovery.runs  # the start and the source's first wake-up (coalesced or not)
        device = await anyio.to_thread.run_sync(losetup, image)
        loop_devices.append(device)
        await discovery.reconciled(before + 1)  # within seconds, with a poll interval of an hour
        assert runtime.stats()["Discovery"].errors == 0


async def test_discovery_of_image_files_has_no_uevent_source(image: Path) -> None:
    assert DiscoveryController([str(image)]).sources == ()
