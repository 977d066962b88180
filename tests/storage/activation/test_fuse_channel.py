"""The FUSE host's control socket, both ends, over a real unix socket with a host thread."""

from __future__ import annotations

import errno
import os
import socket
import threading
from typing import TYPE_CHECKING

import pytest

from volumed.storage.activation._fuse_channel import ChannelError, peer_uid, receive, reply, request
from volumed.storage.activation._fuse_control import ControlError, encode

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

KEY = bytes(range(64))


def host(path: Path, answer: Callable[[socket.socket], None]) -> tuple[threading.Thread, threading.Event]:
    """A one-connection host at ``path`` running ``answer``, then closing; the event says it closed."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    closed = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        try:
            answer(connection)
        finally:
            connection.close()
            listener.close()
            closed.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread, closed


def test_request_and_receive_carry_message_key_and_descriptor(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    def answer(connection: socket.socket) -> None:
        message, key, fd = receive(connection)
        assert fd is not None
        seen.update(message=message, key=key, same=os.path.sameopenfile(fd, 0), uid=peer_uid(connection))
        os.close(fd)
        reply(connection, {"ok": True})

    thread, _ = host(tmp_path / "s", answer)
    assert request(tmp_path / "s", {"op": "add"}, key=KEY, fd=0) == {"ok": True}
    thread.join(10)
    assert seen == {"message": {"op": "add"}, "key": KEY, "same": True, "uid": os.geteuid()}


def test_a_host_that_answers_and_closes_before_the_rest_is_sent_is_still_heard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a loaded machine the host read the whole request, mounted, answered and closed before the client's
    second (empty) send, which failed with EPIPE: the volume was served, its activation reported failed."""

    def answer(connection: socket.socket) -> None:
        _, _, fd = receive(connection)
        if fd is not None:
            os.close(fd)
        reply(connection, {"ok": True, "pid": 1})

    _, closed = host(tmp_path / "s", answer)
    send_fds = socket.send_fds

    def preempted(sock: socket.socket, buffers: list[bytes], fds: list[int]) -> int:
        sent = send_fds(sock, buffers, fds)
        assert closed.wait(10)  # the client is descheduled until the host has answered and closed
        return sent

    monkeypatch.setattr(socket, "send_fds", preempted)
    assert request(tmp_path / "s", {"op": "add"}, key=KEY, fd=0) == {"ok": True, "pid": 1}


def test_no_host_is_a_channel_error_with_its_errno(tmp_path: Path) -> None:
    with pytest.raises(ChannelError, match="does not answer") as info:
        request(tmp_path / "absent.sock", {"op": "list"})
    assert info.value.errno == 2


def test_a_request_with_two_descriptors_is_refused_and_both_are_closed(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def answer(connection: socket.socket) -> None:
        try:
            receive(connection)
        except ControlError as exc:
            errors.append(exc)

    thread, _ = host(tmp_path / "s", answer)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(str(tmp_path / "s"))
    socket.send_fds(client, [encode({"op": "list"})], [0, 1])
    thread.join(10)
    client.close()
    assert [str(error) for error in errors] == ["a request with more than one descriptor"]


@pytest.mark.parametrize("kind", ["someone else's socket", "a regular file"])
def test_no_key_goes_to_a_socket_root_does_not_own(tmp_path: Path, kind: str) -> None:
    """review23 F4: the runtime directory is 0755; the key goes only to a socket owned by root."""
    path = tmp_path / "host.sock"
    if kind == "a regular file":
        path.write_bytes(b"")
    else:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(1)
        os.chown(path, 65534, 65534)
    with pytest.raises(ChannelError, match="not a socket owned by root") as raised:
        request(path, {"op": "add"}, key=KEY)
    assert raised.value.errno == errno.EPERM
    if kind != "a regular file":
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # it was never connected to
        listener.close()
