"""The FUSE host's control socket, both ends: one framed request (with a descriptor) and one reply each."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import struct
import time
from typing import TYPE_CHECKING, Final

from ._fuse_control import ControlError, encode, read_frame

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

REQUEST_TIMEOUT: Final = 60.0
"""Long enough for an ``add`` (the host mounts and waits for FUSE's init) on a loaded machine."""


class ChannelError(OSError):
    """No host answers on the socket (absent, refused, gone mid-request, timed out)."""


def request(
    path: Path, message: Mapping[str, object], *, key: bytes = b"", fd: int | None = None,
    timeout: float = REQUEST_TIMEOUT,
) -> dict[str, object]:  # fmt: skip
    """Send one request (``key`` after it, ``fd`` along with it) to the host at ``path``; return its reply.

    Raises:
        ChannelError: nothing listens at ``path``, or it went away or did not answer in ``timeout`` seconds.
        ControlError: the reply does not follow the protocol.
    """
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        connection.settimeout(timeout)
        try:
            _check_owner(path)
            _connect(connection, os.fspath(path), time.monotonic() + timeout)
            if peer_uid(connection) != 0:
                raise PermissionError(errno.EPERM, "the process listening there is not root's")
            frame = encode(message, key)
            if fd is None:
                connection.sendall(frame)
            else:
                sent = socket.send_fds(connection, [frame], [fd])
                if sent < len(frame):  # never an empty send: the host may have answered and closed by now
                    connection.sendall(frame[sent:])
            reply, _ = read_frame(lambda size: _receive(connection, size))
        except OSError as exc:
            raise ChannelError(
                exc.errno, f"the FUSE host at {path} does not answer: {exc.strerror or exc}"
            ) from exc
        return reply
    finally:
        connection.close()


def receive(connection: socket.socket) -> tuple[dict[str, object], bytes, int | None]:
    """One request from a client: message, key and the descriptor that came with it (the caller closes it).

    Raises:
        ControlError: a malformed frame, or more than one descriptor.
        OSError: the connection failed.
    """
    received: list[int] = []
    first = True

    def take(size: int) -> bytes:
        nonlocal first
        if not first:
            return _receive(connection, size)
        first = False
        data, fds, flags, _ = socket.recv_fds(connection, size, 2)
        received.extend(fds)
        if flags & socket.MSG_CTRUNC or len(fds) > 1:
            raise ControlError("a request with more than one descriptor")
        if not data:
            raise ConnectionResetError("the client closed the connection before a request")
        return data + (_receive(connection, size - len(data)) if len(data) < size else b"")

    try:
        message, key = read_frame(take)
    except BaseException:
        for fd in received:
            os.close(fd)
        raise
    return message, key, received[0] if received else None


def reply(connection: socket.socket, message: Mapping[str, object]) -> None:
    """Answer the request; a client that is gone is not an error of the host."""
    with contextlib.suppress(OSError):
        connection.sendall(encode(message))


def peer_uid(connection: socket.socket) -> int:
    """The uid of the process at the other end (SO_PEERCRED)."""
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", credentials)
    return int(uid)


def _check_owner(path: Path) -> None:
    """The socket the key goes to must be root's (its directory is 0755): a socket, owned by uid 0."""
    found = os.lstat(path)
    if not stat.S_ISSOCK(found.st_mode) or found.st_uid != 0:
        raise PermissionError(errno.EPERM, "not a socket owned by root")


def _connect(connection: socket.socket, path: str, deadline: float) -> None:
    """Connect, waiting while the host's listen backlog is full (EAGAIN) until ``deadline``."""
    while True:
        try:
            connection.connect(path)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _receive(connection: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = connection.recv(size - len(chunks))
        if not chunk:
            raise ConnectionResetError("the connection closed mid-frame")
        chunks += chunk
    return bytes(chunks)


__all__ = ["ChannelError", "peer_uid", "receive", "reply", "request"]
