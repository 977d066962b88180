"""A loop device looked up, then detached by another program and attached by it over its own file before the
detach (``losetup -f`` takes the lowest free number, so the number comes back at once): the detach leaves it
alone. The fuse backend looks a volume's loop devices up once per activate/deactivate and detaches them after
its in-use checks: the swap is made from there (a hook on `in_use`), with real loop devices and losetup."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
from typing import TYPE_CHECKING

import pytest

import volumed.storage.activation._fuse as fuse_backend
from tests._tools import require_root, require_tool
from tests.system.activation.test_fuse import NAME, Volume, activator, server_pid  # noqa: F401 (the fixture)
from tests.system.activation.test_fuse_host import wait_gone
from volumed.storage import loop

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from volumed.storage.activation import FuseActivator

MiB = 1 << 20


@pytest.fixture
def victim(tmp_path: Path) -> Iterator[Path]:
    """The other program's image file; its loop devices are detached afterwards."""
    require_root()
    require_tool("losetup")
    path = tmp_path / "victim.img"
    with path.open("wb") as handle:
        handle.truncate(MiB)
    yield path
    for device in loop.find_attachments(path):
        with contextlib.suppress(loop.LoopError):
            loop.detach(device)


def _take_over(device: str, image: Path) -> None:
    """What the other program does: detach ``device`` and attach ``image`` to it."""
    subprocess.run(["losetup", "-d", device], check=True)
    subprocess.run(["losetup", device, str(image)], check=True)


def _backing_file(device: str) -> str | None:
    found = loop.read_loop_device(device)
    return None if found is None else found.backing_file


def test_detach_leaves_a_device_reattached_to_another_file_alone(tmp_path: Path, victim: Path) -> None:
    ours = tmp_path / "ours.img"
    with ours.open("wb") as handle:
        handle.truncate(MiB)
    device = loop.attach(ours)
    try:
        expected = loop.pinned_backing(device)
        assert expected is not None
        assert (expected.device, expected.inode) == (os.stat(ours).st_dev, os.stat(ours).st_ino)
        _take_over(device.path, victim)
        assert loop.pinned_backing(device) is None  # the name it was found on is not what it maps now
        with pytest.raises(loop.LoopError) as raised:
            loop.detach(device, expected=expected)
        assert raised.value.errno == errno.ESTALE
        assert _backing_file(device.path) == str(victim)
    finally:
        for mine in loop.find_attachments(ours):
            loop.detach(mine)
    theirs = loop.find_attachments(victim)
    assert [found.path for found in theirs] == [device.path]
    loop.detach(theirs[0], expected=loop.pinned_backing(theirs[0]))  # its own file: detached
    assert loop.read_loop_device(device.path) is None


def _swap_during_in_use_check(monkeypatch: pytest.MonkeyPatch, victim: Path) -> list[str]:
    """At the backend's first in-use check (after its look-up, before its clean-up), the other program takes
    the device over; the devices taken are returned."""
    taken: list[str] = []
    real = fuse_backend.in_use

    def racing(path: str) -> bool:
        if not taken:
            _take_over(path, victim)
            taken.append(path)
        return real(path)

    monkeypatch.setattr(fuse_backend, "in_use", racing)
    return taken


def test_deactivate_leaves_another_programs_device_alone(
    tmp_path: Path,
    activator: FuseActivator,  # noqa: F811 (the fixture)
    victim: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    volume = Volume(tmp_path, sector_size=512, size=8 * MiB)
    device = activator.activate(NAME, volume.segment, volume.key)
    taken = _swap_during_in_use_check(monkeypatch, victim)

    activator.deactivate(NAME)

    assert taken == [device]
    assert _backing_file(device) == str(victim)
    assert not activator.status(NAME).active


def test_activate_over_a_dead_one_leaves_another_programs_device_alone(
    tmp_path: Path,
    activator: FuseActivator,  # noqa: F811 (the fixture)
    victim: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    volume = Volume(tmp_path, sector_size=512, size=8 * MiB)
    device = activator.activate(NAME, volume.segment, volume.key)
    server = server_pid(activator)
    os.kill(server, signal.SIGKILL)  # its loop device stays, over a dead view
    wait_gone(server)
    taken = _swap_during_in_use_check(monkeypatch, victim)

    again = activator.activate(NAME, volume.segment, volume.key)

    assert taken == [device]
    assert _backing_file(device) == str(victim)
    assert again != device
    assert activator.status(NAME).active
