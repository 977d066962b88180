"""The socket file and its peers: refuse to take over a live socket, remove a stale one, read peer uids."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import struct
from typing import TYPE_CHECKING

from ._errors import SocketInUseError

if TYPE_CHECKING:
    from pathlib import Path

_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_PROBE_TIMEOUT = 1.0


def prepare_socket_path(path: Path) -> None:
    """Make ``path`` free for a new listener (blocking: run it in a worker thread).

    Creates a missing parent directory with mode 0700. A socket nobody answers on (left by a killed
    daemon) is removed; a socket that accepts connections, or a path that is not a socket, raises
    `SocketInUseError` and is left alone.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise SocketInUseError(f"{path} exists and is not a socket: refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(_PROBE_TIMEOUT)
    try:
        probe.connect(os.fspath(path))
    except OSError as error:
        if error.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise SocketInUseError(f"cannot tell whether {path} is in use: {error}") from None
    else:
        raise SocketInUseError(f"another server is already listening on {path}")
    finally:
        probe.close()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process on the other end of a connected unix socket (SO_PEERCRED, set by the kernel)."""
    _pid, uid, _gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    return int(uid)


def remove_socket_if_ours(path: Path, identity: tuple[int, int] | None) -> None:
    """Remove ``path`` if it is still the socket we bound (same device and inode), never a successor's."""
    if identity is None:
        return
    try:
        current = path.lstat()
    except FileNotFoundError:
        return
    if (current.st_dev, current.st_ino) == identity:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def socket_identity(path: Path) -> tuple[int, int] | None:
    """Device and inode of ``path``, to recognise our own socket file later."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino
