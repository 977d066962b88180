"""`volumed run --notify` as a service manager sees it: a real process on a disk image, its notifications read
from a datagram socket the test binds and names in NOTIFY_SOCKET (a path, or an @abstract name).

READY=1 comes only once the volumes are mounted (checked in /proc/self/mountinfo when it arrives), STATUS=
lines come before it, a failed volume still gets READY=1 with a status naming it, STOPPING=1 comes on SIGTERM,
and a run without NOTIFY_SOCKET, or with one that is gone, runs as usual."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_root
from volumed.storage import disklayout

if TYPE_CHECKING:
    from collections.abc import Iterator

VOLUMED = str(Path(sys.executable).parent / "volumed")
MIB = 1024 * 1024
LIMIT = 120.0
"""Seconds a read waits for the next datagram: a safeguard against a hang, not a timing assumption."""
CONFIG = """\
apiVersion: v1alpha1
kind: VolumeConfig
name: STATE
encryption:
  provider: luks2
  keys: [{slot: 0, static: {passphrase: state-secret}}]
  pbkdf: {type: argon2id, memory: 32, iterations: 4, parallel: 1}
---
apiVersion: v1alpha1
kind: VolumeConfig
name: EPHEMERAL
encryption:
  provider: luks2
  keys: [{slot: 0, static: {passphrase: ephemeral-secret}}]
  pbkdf: {type: argon2id, memory: 32, iterations: 4, parallel: 1}
"""
TOO_SMALL_STATE = 16 * MIB
"""A STATE partition no larger than LUKS2's 16 MiB data offset: encrypting it fails, at once, every time."""


@dataclass(frozen=True)
class Node:
    workdir: Path

    def argv(self, *extra: str, notify: bool = True) -> list[str]:
        return [
            VOLUMED, "run", *(["--notify"] if notify else []), "--config", str(self.workdir / "config.yaml"),
            "--disk", str(self.workdir / "node.img"), "--backend", "fuse",
            "--root", str(self.workdir / "root"), "--state-dir", str(self.workdir / "state"), *extra,
        ]  # fmt: skip

    def mounted(self) -> set[str]:
        """The mount targets under this node's root, as the kernel lists them now."""
        root = str(self.workdir / "root")
        with open("/proc/self/mountinfo") as mountinfo:
            targets = {line.split()[4] for line in mountinfo}
        return {target.removeprefix(root) for target in targets if target.startswith(root + "/")}


def make_node(state_size: int) -> Iterator[Node]:
    path = Path(tempfile.mkdtemp(prefix="volumed-run-notify-"))
    try:
        path.chmod(0o755)
        disklayout.create_disk_image(path / "node.img", 512 * MIB, state_size=state_size)
        (path / "config.yaml").write_text(CONFIG)
        yield Node(path)
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


@pytest.fixture
def node() -> Iterator[Node]:
    """A node image whose STATE and EPHEMERAL open (fast argon2id keys)."""
    require_root()
    yield from make_node(disklayout.STATE_SIZE)


@pytest.fixture
def failing_node() -> Iterator[Node]:
    """A node image whose STATE fails (its partition cannot hold a LUKS2 header); EPHEMERAL opens."""
    require_root()
    yield from make_node(TOO_SMALL_STATE)


@pytest.fixture
def manager(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """The service manager's end: a bound datagram socket passing the sender's credentials, and its
    NOTIFY_SOCKET value (a path; ``@abstract`` when parametrized so)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if getattr(request, "param", "path") == "path":
        value = str(tmp_path / "notify")
        sock.bind(value)
    else:
        value = f"@volumed-test-run-notify-{os.getpid()}"
        sock.bind("\0" + value[1:])
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.settimeout(LIMIT)
    with sock:
        yield sock, value


def receive(sock: socket.socket) -> tuple[list[str], int]:
    """The next datagram's lines and the pid of its sender (as the kernel attests it)."""
    message, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = next(
        struct.unpack("iII", data[:12])[0]
        for level, kind, data in ancillary
        if (level, kind) == (socket.SOL_SOCKET, socket.SCM_CREDENTIALS)
    )
    text = message.decode()
    assert text.endswith("\n"), text
    return text.removesuffix("\n").split("\n"), pid


def until_ready(sock: socket.socket, node: Node, process: subprocess.Popen[str]) -> tuple[list[str], str]:
    """Every STATUS= value before READY=1, and the STATUS= sent with it; asserts, as READY=1 arrives, that the
    process runs and its volumes are mounted where a ready one must be, and that every datagram is its own."""
    statuses: list[str] = []
    while True:
        lines, pid = receive(sock)
        assert pid == process.pid, "NotifyAccess=main: only the main process may notify"
        if lines[0] == "READY=1":
            assert process.poll() is None
            assert len(lines) == 2, lines
            assert lines[1].startswith("STATUS="), lines
            return statuses, lines[1].removeprefix("STATUS=")
        assert len(lines) == 1, lines
        assert lines[0].startswith("STATUS="), lines
        statuses.append(lines[0].removeprefix("STATUS="))


def until_stopping(sock: socket.socket) -> None:
    """Read on to STOPPING=1: a STATUS= may come first (the status changed), READY=1 never again."""
    while True:
        lines, _ = receive(sock)
        if lines == ["STOPPING=1"]:
            return
        assert len(lines) == 1, lines
        assert lines[0].startswith("STATUS="), lines


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=LIMIT)
    return stderr


def child_environments(pid: int) -> list[bytes]:
    """The environment of every process below ``pid`` (its FUSE servers, tools)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    below = {pid}
    changed = True
    while changed:
        changed = False
        for child, parent in parents.items():
            if parent in below and child not in below:
                below.add(child)
                changed = True
    environments = []
    for child in below - {pid}:
        try:
            environments.append(Path(f"/proc/{child}/environ").read_bytes())
        except OSError:
            continue
    return environments


@pytest.mark.parametrize("manager", ["path", "abstract"], indirect=True)
def test_ready_comes_once_the_volumes_are_mounted_and_stopping_on_sigterm(
    node: Node, manager: tuple[socket.socket, str]
) -> None:
    sock, address = manager
    env = dict(os.environ, NOTIFY_SOCKET=address)
    process = subprocess.Popen(
        node.argv(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        statuses, ready_status = until_ready(sock, node, process)
        assert node.mounted() == {"/system/state", "/var"}
        assert ready_status == "ready: EPHEMERAL, STATE"
        assert statuses, "no STATUS= before READY=1"
        assert all(status.startswith("waiting") for status in statuses), statuses
        assert len(set(statuses)) == len(statuses), "a STATUS= is sent when the text changes, not each look"
        fuse_servers = child_environments(process.pid)
        assert fuse_servers, "the fuse backend runs a FUSE server for the volumes"
        assert not [e for e in fuse_servers if b"NOTIFY_SOCKET=" in e], "a child may notify in volumed's name"
    finally:
        stderr = stop(process)
    until_stopping(sock)
    assert process.returncode == 0, stderr
    assert node.mounted() == set()
    assert "cannot notify" not in stderr


def test_a_failed_volume_is_ready_with_a_status_naming_it(
    failing_node: Node, manager: tuple[socket.socket, str]
) -> None:
    """The process is up and serves what opened: READY=1 all the same, and the status says what failed."""
    sock, address = manager
    env = dict(os.environ, NOTIFY_SOCKET=address)
    process = subprocess.Popen(
        failing_node.argv("--retry-interval", "600"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, ready_status = until_ready(sock, failing_node, process)
        assert failing_node.mounted() == {"/var"}
        assert ready_status.startswith("failed: STATE ("), ready_status
        assert "too small for the data offset" in ready_status
        assert ready_status.endswith("; ready: EPHEMERAL"), ready_status
    finally:
        stderr = stop(process)
    until_stopping(sock)
    assert process.returncode == 0, stderr


def test_once_is_ready_before_it_exits(failing_node: Node, manager: tuple[socket.socket, str]) -> None:
    sock, address = manager
    env = dict(os.environ, NOTIFY_SOCKET=address)
    process = subprocess.Popen(
        failing_node.argv("--once", "--timeout", str(LIMIT), "--retry-interval", "600"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, ready_status = until_ready(sock, failing_node, process)
        assert ready_status.startswith("failed: STATE ("), ready_status
        until_stopping(sock)
    finally:
        stdout, stderr = process.communicate(timeout=LIMIT)
    assert process.returncode == 6, stderr
    assert "STATE failed: " in stdout


def test_without_notify_socket_it_runs_as_usual(node: Node) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    result = subprocess.run(
        node.argv("--once", "--timeout", str(LIMIT)),
        env=env, capture_output=True, text=True, timeout=2 * LIMIT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "service manager" not in result.stderr


def test_a_notify_socket_that_is_gone_is_one_warning_and_not_fatal(node: Node) -> None:
    gone = node.workdir / "no-such-socket"
    env = dict(os.environ, NOTIFY_SOCKET=str(gone))
    result = subprocess.run(
        node.argv("--once", "--timeout", str(LIMIT)),
        env=env, capture_output=True, text=True, timeout=2 * LIMIT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "cannot notify the service manager" in line]
    assert len(warnings) == 1, result.stderr
    assert f"socket={gone}" in warnings[0]
    assert "No such file or directory" in warnings[0]


def test_without_notify_nothing_is_sent(node: Node, manager: tuple[socket.socket, str]) -> None:
    """NOTIFY_SOCKET alone (a unit that is not Type=notify may set it) changes nothing."""
    sock, address = manager
    result = subprocess.run(
        node.argv("--once", "--timeout", str(LIMIT), notify=False),
        env=dict(os.environ, NOTIFY_SOCKET=address), capture_output=True, text=True, timeout=2 * LIMIT,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)
