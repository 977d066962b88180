"""A volume whose FUSE server died: its loop device over the dead view is still found, checked and detached.

The loop driver cannot stat a file on a FUSE mount whose server is gone (LOOP_GET_STATUS64 fails with
ENOTCONN). The look-up that pins a device to its file (c854fd4) dropped such a device: deactivate and a new
activate left it attached for good, and an activate no longer saw the filesystem still mounted on it, so the
volume was served anew beside a mount on the dead device (its writes failing with EIO). Found by review50.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from typing import TYPE_CHECKING

import pytest

from tests.system.activation.test_fuse import (  # noqa: F401 (the fixtures)
    NAME,
    Mounts,
    Volume,
    activator,
    mounts,
    run,
    server_pid,
)
from tests.system.activation.test_fuse_host import wait_gone
from volumed.storage import loop
from volumed.storage.activation import ActivationBusyError

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.storage.activation import FuseActivator

MiB = 1 << 20


def _over_the_view(fuse: FuseActivator) -> list[str]:
    """The loop devices attached over the volume's decrypted file (by the name sysfs shows)."""
    view = str(fuse.decrypted_file(NAME))
    return sorted(d.path for d in loop.list_loop_devices() if d.backing_file == view)


def _kill_the_server(fuse: FuseActivator, device: str) -> None:
    """Kill the server and wait until the kernel has dropped its connection: the file is then unreachable
    (that comes a little after the process is gone)."""
    server = server_pid(fuse)
    os.kill(server, signal.SIGKILL)
    wait_gone(server)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            loop.loop_backing_of(device)
        except loop.LoopError as exc:
            if exc.errno == errno.ENOTCONN:
                return
            raise
        time.sleep(0.05)
    pytest.fail(f"the loop driver still stats the file of {device} 10 s after its server died")


def test_deactivate_over_a_dead_view_detaches_its_loop_device(
    tmp_path: Path,
    activator: FuseActivator,  # noqa: F811 (the fixture)
) -> None:
    volume = Volume(tmp_path, sector_size=4096, size=16 * MiB)
    device = activator.activate(NAME, volume.segment, volume.key)
    _kill_the_server(activator, device)
    assert _over_the_view(activator) == [device]

    activator.deactivate(NAME)

    assert _over_the_view(activator) == []
    assert loop.read_loop_device(device) is None


def test_activate_over_a_dead_view_leaves_one_loop_device(
    tmp_path: Path,
    activator: FuseActivator,  # noqa: F811 (the fixture)
) -> None:
    volume = Volume(tmp_path, sector_size=4096, size=16 * MiB)
    device = activator.activate(NAME, volume.segment, volume.key)
    _kill_the_server(activator, device)

    again = activator.activate(NAME, volume.segment, volume.key)

    assert activator.status(NAME).active
    assert _over_the_view(activator) == [again]  # the old one was detached (its number may be reused)
    activator.deactivate(NAME)
    assert _over_the_view(activator) == []
    assert loop.read_loop_device(device) is None


def test_activate_over_a_dead_view_still_mounted_is_refused(
    tmp_path: Path,
    activator: FuseActivator,  # noqa: F811 (the fixture)
    mounts: Mounts,  # noqa: F811 (the fixture)
) -> None:
    volume = Volume(tmp_path, sector_size=4096, size=16 * MiB)
    device = activator.activate(NAME, volume.segment, volume.key)
    run("mkfs.ext4", "-q", "-F", device)
    target = mounts.mount(device)
    _kill_the_server(activator, device)

    with pytest.raises(ActivationBusyError, match=f"{device} over its view is still in use"):
        activator.activate(NAME, volume.segment, volume.key)
    assert _over_the_view(activator) == [device]  # nothing served beside the mount on the dead device

    mounts.umount(target)  # what the error asks for: the filesystem off the dead device, then again
    again = activator.activate(NAME, volume.segment, volume.key)
    assert _over_the_view(activator) == [again]
    activator.deactivate(NAME)
    assert _over_the_view(activator) == []


def test_another_programs_device_on_the_recorded_number_is_not_taken(
    tmp_path: Path,
    activator: FuseActivator,  # noqa: F811 (the fixture)
) -> None:
    """The device recorded in the state file is taken by number only while it is that very attachment: another
    program's file on the number, which sysfs also names ``/<name>`` (its mount lazily gone), was taken as the
    volume's device (status active on it, activate handing it out) and detached (review51 F1)."""
    volume = Volume(tmp_path, sector_size=4096, size=16 * MiB)
    device = activator.activate(NAME, volume.segment, volume.key)
    run("losetup", "-d", device)  # the admin; the state file still names the number
    other = tmp_path / "other"
    other.mkdir()
    run("mount", "-t", "tmpfs", "other", other)
    try:
        (other / NAME).write_bytes(b"the other program's data".ljust(MiB, b"\0"))
        run("losetup", device, other / NAME)
    finally:
        run("umount", "-l", other)
    try:
        found = loop.read_loop_device(device)
        assert found is not None
        assert found.backing_file == f"/{NAME}"  # what sysfs says of ours once its view is unmounted

        assert not activator.status(NAME).active
        again = activator.activate(NAME, volume.segment, volume.key)
        assert again != device
        activator.deactivate(NAME)
        assert loop.read_loop_device(device) == found  # left alone
    finally:
        with contextlib.suppress(loop.LoopError):
            loop.detach(device)


def test_a_dead_view_looked_up_since_is_still_found(
    tmp_path: Path,
    activator: FuseActivator,  # noqa: F811 (the fixture)
    mounts: Mounts,  # noqa: F811 (the fixture)
) -> None:
    """Once anything looks the dead view's file up (a stat, `df`), the kernel drops its FUSE entry and sysfs
    names the file '<path> (deleted)': matched by the exact name, the device was lost again (review52 F1):
    served anew beside the mount on it, and left attached."""
    volume = Volume(tmp_path, sector_size=4096, size=16 * MiB)
    device = activator.activate(NAME, volume.segment, volume.key)
    sequence = loop.read_diskseq(device)
    run("mkfs.ext4", "-q", "-F", device)
    target = mounts.mount(device)
    _kill_the_server(activator, device)
    with pytest.raises(OSError, match="Transport endpoint is not connected"):  # and the entry goes
        os.stat(activator.decrypted_file(NAME))
    found = loop.read_loop_device(device)
    assert found is not None
    assert found.backing_file == f"{activator.decrypted_file(NAME)} (deleted)"

    with pytest.raises(ActivationBusyError, match=f"{device} over its view is still in use"):
        activator.activate(NAME, volume.segment, volume.key)
    mounts.umount(target)
    activator.deactivate(NAME)
    assert loop.read_loop_device(device) is None or loop.read_diskseq(device) != sequence
