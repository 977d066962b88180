"""One FUSE server for every volume of a runtime directory (issue 16), for real (root): one process serves
three volumes, each with its own data and key; a second process's volume joins it; one volume goes and the
others stay; the server's death shows in every volume's status; the key is nowhere but in the server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests._tools import require_root, require_tool
from tests.system.activation.conformance import check_lifecycle
from volumed.storage import loop
from volumed.storage.activation import (
    ActivationBusyError,
    ActivationStatus,
    DataSegment,
    FuseActivator,
    _fuse,
)
from volumed.storage.activation._fuse_channel import ChannelError, request
from volumed.storage.activation._process import process_cmdline
from volumed.storage.luks2.payload import PayloadStream

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MiB = 1 << 20
SIZE = 8 * MiB
NAMES = ("luks2-A", "luks2-B", "luks2-C")
SERVER_MODULE = "volumed.storage.activation._fuse_server"


def servers(runtime: Path) -> list[int]:
    """The FUSE server processes of ``runtime`` (by argv, as bench/start.py counts them)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            argv = process_cmdline(int(entry.name))
            if argv and SERVER_MODULE in argv and any(str(runtime) in part for part in argv):
                found.append(int(entry.name))
    return found


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while process_cmdline(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process_cmdline(pid) is None, f"server {pid} still runs"


class Images:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.keys = {name: os.urandom(64) for name in NAMES}

    def segment(self, name: str) -> DataSegment:
        image = self.directory / f"{name}.img"
        if not image.exists():
            with image.open("wb") as handle:
                handle.truncate(SIZE)
        return DataSegment(device=str(image), offset=0, size=None, sector_size=4096)

    def decrypted(self, name: str) -> bytes:
        with (self.directory / f"{name}.img").open("rb") as handle:
            stream = PayloadStream(
                handle, offset=0, size=SIZE, sector_size=4096, iv_tweak=0, volume_key=self.keys[name]
            )
            return stream.read()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Path]:
    require_root()
    require_tool("fusermount3")
    directory = tmp_path / "run"
    yield directory
    fuse = FuseActivator(runtime_dir=directory, shared=True)
    for name in NAMES:
        for device in loop.find_attachments(fuse.decrypted_file(name)):
            with contextlib.suppress(loop.LoopError):
                loop.detach(device)
        with contextlib.suppress(Exception):
            fuse.deactivate(name)
    for pid in servers(directory):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for name in NAMES:
        subprocess.run(["umount", "-l", str(fuse.mountpoint(name))], check=False, capture_output=True)


@pytest.fixture
def images(tmp_path: Path) -> Images:
    return Images(tmp_path)


def test_one_server_process_serves_three_volumes_each_with_its_own_data(
    runtime: Path, images: Images
) -> None:
    fuse = FuseActivator(runtime_dir=runtime, shared=True)
    devices = {name: fuse.activate(name, images.segment(name), images.keys[name]) for name in NAMES}
    (server,) = servers(runtime)
    assert {fuse.status(name).active for name in NAMES} == {True}
    assert stat.S_IMODE(os.stat(runtime / ".fuse-host.sock").st_mode) == 0o600
    data = {name: os.urandom(SIZE) for name in NAMES}
    for name, device in devices.items():
        with open(device, "r+b") as block:
            block.write(data[name])
            block.flush()
            os.fsync(block.fileno())
    for name, device in devices.items():
        with open(device, "rb") as block:
            assert block.read() == data[name], name
    for name in NAMES:
        fuse.deactivate(name)
    wait_gone(server)  # the last volume gone, the server exits
    for name in NAMES:  # each image holds its own data under its own key
        assert images.decrypted(name) == data[name], name


def test_a_volume_from_a_second_process_joins_the_running_server(runtime: Path, images: Images) -> None:
    fuse = FuseActivator(runtime_dir=runtime, shared=True)
    fuse.activate(NAMES[0], images.segment(NAMES[0]), images.keys[NAMES[0]])
    (server,) = servers(runtime)
    script = (
        "import sys\n"
        "from volumed.storage.activation import DataSegment, FuseActivator\n"
        f"fuse = FuseActivator(runtime_dir={str(runtime)!r}, shared=True)\n"
        f"segment = DataSegment({images.segment(NAMES[1]).device!r}, offset=0, size=None, sector_size=4096)\n"
        f"print(fuse.activate({NAMES[1]!r}, segment, sys.stdin.buffer.read()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], input=images.keys[NAMES[1]], capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    assert servers(runtime) == [server]
    status = fuse.status(NAMES[1])
    assert status.active
    assert status.device == result.stdout.decode().strip()
    assert fuse.status(NAMES[0]).active


def test_deactivating_one_volume_leaves_the_others_serving(runtime: Path, images: Images) -> None:
    fuse = FuseActivator(runtime_dir=runtime, shared=True)
    devices = {name: fuse.activate(name, images.segment(name), images.keys[name]) for name in NAMES}
    (server,) = servers(runtime)
    fuse.deactivate(NAMES[1])
    assert not fuse.mountpoint(NAMES[1]).exists()
    status = fuse.status(NAMES[1])
    assert (status.active, status.problem) == (False, None)
    for name in (NAMES[0], NAMES[2]):
        assert fuse.status(name).active
        with open(devices[name], "r+b") as block:
            block.write(b"still served" * 100)
            os.fsync(block.fileno())
    assert servers(runtime) == [server]
    # and the volume comes back into the same server
    fuse.activate(NAMES[1], images.segment(NAMES[1]), images.keys[NAMES[1]])
    assert servers(runtime) == [server]
    assert fuse.status(NAMES[1]).active


def test_killing_the_server_makes_every_volume_unhealthy_and_reactivation_recovers(
    runtime: Path, images: Images
) -> None:
    fuse = FuseActivator(runtime_dir=runtime, shared=True)
    for name in NAMES:
        fuse.activate(name, images.segment(name), images.keys[name])
    (server,) = servers(runtime)
    os.kill(server, signal.SIGKILL)
    wait_gone(server)
    for name in NAMES:
        status = fuse.status(name)
        assert not status.active
        assert status.problem == "the FUSE server is not running"
    assert sorted(fuse.leftovers()) == sorted(NAMES)
    device = fuse.activate(NAMES[0], images.segment(NAMES[0]), images.keys[NAMES[0]])
    (new_server,) = servers(runtime)
    assert new_server != server
    assert fuse.status(NAMES[0]).active
    assert not fuse.status(NAMES[1]).active  # still the dead server's
    with open(device, "rb") as block:
        assert len(block.read(4096)) == 4096


def test_a_volume_the_server_no_longer_serves_is_not_healthy(runtime: Path, images: Images) -> None:
    """A session that ended inside a live server (its thread gone) must not look active."""
    fuse = FuseActivator(runtime_dir=runtime, shared=True)
    for name in NAMES[:2]:
        fuse.activate(name, images.segment(name), images.keys[name])
    (server,) = servers(runtime)
    # the mount of NAMES[0] goes lazily with its loop device still attached: only the session can tell
    assert request(runtime / ".fuse-host.sock", {"op": "remove", "name": NAMES[0]}) == {
        "ok": True,
        "removed": True,
    }
    status = fuse.status(NAMES[0])
    assert not status.active
    assert status.problem == f"the FUSE server (pid {server}) no longer serves {NAMES[0]}"
    assert fuse.status(NAMES[1]).active


def test_sigterm_stops_every_volume_and_the_server(runtime: Path, images: Images) -> None:
    fuse = FuseActivator(runtime_dir=runtime, shared=True)
    for name in NAMES:
        fuse.activate(name, images.segment(name), images.keys[name])
    (server,) = servers(runtime)
    os.kill(server, signal.SIGTERM)
    wait_gone(server)
    assert not (runtime / ".fuse-host.sock").exists()  # its socket goes with it
    for name in NAMES:
        assert not fuse.mountpoint(name).is_mount()
        assert fuse.status(name).problem == "the FUSE server is not running"
        fuse.deactivate(name)
    assert fuse.leftovers() == []
    for name in NAMES:  # sysfs names the files '/<name>' now their mounts are gone: they were left attached
        assert [d.path for d in loop.list_loop_devices() if d.backing_file == f"/{name}"] == []


def test_the_key_is_in_no_argv_environment_state_file_or_log(runtime: Path, images: Images) -> None:
    fuse = FuseActivator(runtime_dir=runtime, shared=True)
    for name in NAMES:
        fuse.activate(name, images.segment(name), images.keys[name])
    (server,) = servers(runtime)
    exposed = [f"/proc/{server}/cmdline", f"/proc/{server}/environ"]
    exposed += [entry.path for entry in os.scandir(runtime) if entry.is_file(follow_symlinks=False)]
    assert any(path.endswith(".fuse-host.log") for path in exposed)
    for path in exposed:
        with open(path, "rb") as handle:
            text = handle.read()
        for key in images.keys.values():
            assert key not in text, path
            assert key.hex().encode() not in text, path
    with open(f"/proc/{server}/limits", encoding="ascii") as limits:
        line = next(line for line in limits if line.startswith("Max core file size"))
    assert line.split()[4:6] == ["0", "0"]


def test_the_server_of_one_volume_still_works(tmp_path: Path, runtime: Path) -> None:
    """shared=False: a process per volume, as before (and what an older volumed left is still recognised)."""
    images = Images(tmp_path)
    fuse = FuseActivator(runtime_dir=runtime, shared=False)
    check_lifecycle(fuse, NAMES[0], images.segment(NAMES[0]), images.keys[NAMES[0]], tmp_path, size=SIZE)
    assert servers(runtime) == []


def test_a_server_that_does_not_answer_is_not_taken_for_dead_and_its_volume_stays(
    runtime: Path, images: Images, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review23 F2: activate() during a stall (SIGSTOP here, swap or CPU starvation on a node) must not tear
    down the view its user holds open and serve it again on another loop device (the old one got EIO)."""
    fuse = FuseActivator(runtime_dir=runtime, shared=True)
    device = fuse.activate(NAMES[0], images.segment(NAMES[0]), images.keys[NAMES[0]])
    (server,) = servers(runtime)
    real_request = _fuse.request

    def resume_once_unanswered(*args: Any, **kwargs: Any) -> dict[str, object]:
        try:
            return real_request(*args, **kwargs)
        except ChannelError:  # the stall outlasted the query: the server runs on after it
            os.kill(server, signal.SIGCONT)
            raise

    monkeypatch.setattr(_fuse, "request", resume_once_unanswered)
    monkeypatch.setattr(_fuse, "QUERY_TIMEOUT", 0.5)
    with open(device, "r+b", buffering=0) as user:  # the volume's user holds its loop device open
        os.kill(server, signal.SIGSTOP)
        try:
            again = fuse.activate(NAMES[0], images.segment(NAMES[0]), images.keys[NAMES[0]])
        finally:
            os.kill(server, signal.SIGCONT)
        user.write(b"y" * 4096)
        os.fsync(user.fileno())  # EIO when its view was taken away
    assert again == device
    assert servers(runtime) == [server]
    assert [d.path for d in loop.find_attachments(fuse.decrypted_file(NAMES[0]))] == [device]
    assert images.decrypted(NAMES[0])[:4096] == b"y" * 4096


def test_a_full_listen_backlog_or_a_stall_never_shows_a_served_volume_inactive(
    runtime: Path, images: Images, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review23 F2: with the server stopped, 200 waiting connections (a burst of status calls); status()
    neither says inactive (EAGAIN on a full backlog of 16 did) nor blocks until the server runs again."""
    fuse = FuseActivator(runtime_dir=runtime, shared=True)
    fuse.activate(NAMES[0], images.segment(NAMES[0]), images.keys[NAMES[0]])
    (server,) = servers(runtime)
    monkeypatch.setattr(_fuse, "QUERY_TIMEOUT", 0.5)
    waiting: list[socket.socket] = []
    found: list[ActivationStatus] = []
    os.kill(server, signal.SIGSTOP)
    try:
        for _ in range(200):
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            waiting.append(connection)
            with contextlib.suppress(BlockingIOError):
                connection.connect(str(runtime / ".fuse-host.sock"))
        asking = threading.Thread(target=lambda: found.append(fuse.status(NAMES[0])), daemon=True)
        asking.start()
        asking.join(60)  # a bound for the failure only: it returns after QUERY_TIMEOUT
        answered_while_stopped = not asking.is_alive()
    finally:
        os.kill(server, signal.SIGCONT)
        for connection in waiting:
            connection.close()
    assert answered_while_stopped
    assert found[0].active, found[0].problem
    assert found[0].problem is not None
    assert "does not answer" in found[0].problem
    assert fuse.status(NAMES[0]).active


def test_a_dead_servers_volume_still_in_use_is_not_served_again_on_another_loop_device(
    runtime: Path, images: Images
) -> None:
    """review23 F1: after kill -9 of the server, a filesystem stays mounted on the dead view's loop device
    (EIO); serving the volume again on a new loop device left it there while the status named the new one.
    activate() refuses, naming why, until that device is let go (volumed stopped, it is unmounted)."""
    fuse = FuseActivator(runtime_dir=runtime, shared=True)
    device = fuse.activate(NAMES[0], images.segment(NAMES[0]), images.keys[NAMES[0]])
    (server,) = servers(runtime)
    with open(device, "rb") as holder:
        fcntl_excl = os.open(device, os.O_RDONLY | os.O_EXCL)  # held as a mounted filesystem holds it
        try:
            os.kill(server, signal.SIGKILL)
            wait_gone(server)
            with pytest.raises(ActivationBusyError, match="the FUSE server is not running") as refused:
                fuse.activate(NAMES[0], images.segment(NAMES[0]), images.keys[NAMES[0]])
            assert device in str(refused.value)
            assert servers(runtime) == []
            assert [d.path for d in loop.find_attachments(fuse.decrypted_file(NAMES[0]))] == [device]
        finally:
            os.close(fcntl_excl)
        del holder
    again = fuse.activate(NAMES[0], images.segment(NAMES[0]), images.keys[NAMES[0]])  # let go: it recovers
    assert fuse.status(NAMES[0]).active
    with open(again, "rb") as block:
        assert len(block.read(4096)) == 4096
