"""The sd_notify protocol by hand (cli/_sd_notify.py): addresses, the datagram, and failures that are logged
once and never block or raise."""

from __future__ import annotations

import errno
import os
import socket
import struct
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from volumed.cli._sd_notify import ENV_NOTIFY_SOCKET, MAX_VALUE, Notifier, notify_address

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(params=["path", "abstract"])
def receiver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket, as the service manager's, and the $NOTIFY_SOCKET value that names it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        value = str(tmp_path / "notify")
        sock.bind(value)
    else:
        value = f"@volumed-test-notify-{os.getpid()}-{id(sock)}"
        sock.bind("\0" + value[1:])
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.settimeout(10)  # a safeguard against a hang: every datagram is sent before the read
    with sock:
        yield sock, value


def test_addresses_are_a_path_or_an_abstract_name() -> None:
    assert notify_address("/run/systemd/notify") == b"/run/systemd/notify"
    assert notify_address("@systemd-notify") == b"\0systemd-notify"
    for value in ("run/systemd/notify", "@", "vsock:2:1234"):
        with pytest.raises(ValueError, match="neither an absolute path nor an @abstract name"):
            notify_address(value)


def test_the_datagram_carries_the_fields_and_our_credentials(receiver: tuple[socket.socket, str]) -> None:
    sock, value = receiver
    notifier = Notifier(notify_address(value))
    assert notifier.ready("ready: STATE")
    message, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
    assert message == b"READY=1\nSTATUS=ready: STATE\n"
    (level, kind, data), *_ = ancillary
    assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_CREDENTIALS)
    assert struct.unpack("iII", data[:12])[0] == os.getpid()  # NotifyAccess=main takes the main pid's only
    assert notifier.status("waiting: EPHEMERAL (waiting for STATE)")
    assert notifier.stopping()
    assert sock.recv(4096) == b"STATUS=waiting: EPHEMERAL (waiting for STATE)\n"
    assert sock.recv(4096) == b"STOPPING=1\n"
    notifier.close()


def test_a_value_is_one_line_and_capped(receiver: tuple[socket.socket, str]) -> None:
    """A newline in a status (an error message's) would start an assignment of its own: READY=1 before the
    volumes are ready."""
    sock, value = receiver
    notifier = Notifier(notify_address(value))
    assert notifier.status("failed: u-data (bad\nREADY=1\r\x1b[31m)")
    assert sock.recv(4096) == b"STATUS=failed: u-data (bad READY=1  [31m)\n"
    assert notifier.status("x" * 10_000)
    assert sock.recv(65536) == b"STATUS=" + b"x" * (MAX_VALUE - 3) + b"...\n"
    assert notifier.status("\u00e9" * 2000)  # two bytes each: the cap is in bytes, on a character boundary
    assert sock.recv(65536) == b"STATUS=" + "\u00e9".encode() * ((MAX_VALUE - 3) // 2) + b"...\n"
    assert notifier.status("cannot open /dev/disk/\udcff")  # an undecodable byte of a path (surrogateescape)
    assert sock.recv(4096) == b"STATUS=cannot open /dev/disk/\\udcff\n"
    notifier.close()


def test_without_notify_socket_nothing_is_sent_and_the_variable_is_taken_out() -> None:
    environ = {"PATH": "/usr/bin"}
    notifier = Notifier.from_environment(environ)
    assert not notifier.enabled
    assert not notifier.ready("ready")
    assert not notifier.status("x")
    assert not notifier.stopping()
    environ[ENV_NOTIFY_SOCKET] = "/run/systemd/notify"
    assert Notifier.from_environment(environ).enabled
    assert environ == {"PATH": "/usr/bin"}  # the FUSE servers and tools must not notify in volumed's name


def test_an_unusable_address_is_a_warning_and_no_notifier() -> None:
    with capture_logs() as logs:
        notifier = Notifier.from_environment({ENV_NOTIFY_SOCKET: "vsock:2:1234"})
    assert not notifier.enabled
    assert [entry["event"] for entry in logs] == ["service manager notifications are off"]


def test_a_missing_socket_is_logged_once_and_never_raised(tmp_path: Path) -> None:
    notifier = Notifier(os.fsencode(tmp_path / "gone"))
    with capture_logs() as logs:
        assert not notifier.status("waiting")
        assert not notifier.ready("ready")
        assert not notifier.stopping()
    assert len(logs) == 1, logs
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["socket"] == str(tmp_path / "gone")
    assert logs[0]["error"] == "No such file or directory"
    notifier.close()


def test_a_manager_that_does_not_read_costs_datagrams_not_a_stall(
    receiver: tuple[socket.socket, str],
) -> None:
    """The receiver's queue fills (it never reads): sends fail at once (EAGAIN) instead of blocking."""
    _, value = receiver
    notifier = Notifier(notify_address(value))
    with capture_logs() as logs:
        sent = 0
        while notifier.status(f"status {sent}"):
            sent += 1
            assert sent < 1_000_000, "the queue never filled"
        assert not notifier.status("one more")
    assert sent > 0
    assert len(logs) == 1, logs
    assert logs[0]["error"] == os.strerror(errno.EAGAIN)
    notifier.close()
