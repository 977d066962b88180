"""The FUSE host's request handling, without FUSE: a request that breaks anything gets an error reply (never
a dead thread with the client left at EOF), and the device descriptor that came with it is closed."""

from __future__ import annotations

import os
import socket
import struct
import threading
from typing import TYPE_CHECKING

import pytest

from volumed.storage.activation._fuse_channel import receive
from volumed.storage.activation._fuse_control import AddRequest, ControlError, encode, read_frame
from volumed.storage.activation._fuse_host import Host

if TYPE_CHECKING:
    from pathlib import Path

KEY = bytes(range(64))
DEEP = b"[" * 30000 + b"]" * 30000


def closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def test_deeply_nested_json_is_a_control_error() -> None:
    """review23 F3: json.loads raised RecursionError, which nothing caught."""
    frame = struct.pack(">I", len(DEEP)) + DEEP
    chunks = iter([frame[:4], frame[4:]])
    with pytest.raises(ControlError, match="not JSON"):
        read_frame(lambda size: next(chunks))


def test_a_deeply_nested_request_gets_an_error_reply(tmp_path: Path) -> None:
    host = Host(tmp_path)
    client, server = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with client:
        client.sendall(struct.pack(">I", len(DEEP)) + DEEP)
        host._connections = 1  # as its accept loop counts it
        handler = threading.Thread(target=host._handle, args=(server,))  # it blocks signals in its thread
        handler.start()
        handler.join()
        answer, _ = read_frame(lambda size: client.recv(size, socket.MSG_WAITALL))
    assert answer["ok"] is False
    assert "not JSON" in str(answer["error"])


def test_an_add_that_fails_unforeseen_replies_an_error_and_closes_the_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review23 F3: any exception but ControlError in _add escaped its thread and leaked the descriptor."""
    host = Host(tmp_path)
    (tmp_path / "luks2-A").mkdir()
    image = tmp_path / "luks2-A.img"
    image.write_bytes(bytes(1 << 20))

    def broken(name: str) -> bool:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(host, "_remove", broken)
    add = AddRequest("luks2-A", str(image), 0, 1 << 20, 4096, 0, "aes-xts-plain64")
    client, server = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fd = os.open(image, os.O_RDWR | os.O_CLOEXEC)
    with client:
        socket.send_fds(client, [encode(add.message(), KEY)], [fd])
        os.close(fd)
        message, key, received = receive(server)
        assert received is not None
        answer = host._answer(message, key, received)
        server.close()
    assert answer["ok"] is False
    assert "Input/output error" in str(answer["error"])
    assert closed(received)
