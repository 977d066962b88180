"""The one FUSE server of a runtime directory: every volume's decrypted file, each on a FUSE mount of its own.

Started by FuseActivator as ``python -m volumed.storage.activation._fuse_server --host --runtime-dir DIR
--ready-fd N`` in a session of its own, so it outlives the volumed that started it; later activations, from
that volumed or a later one, hand it volumes through the control socket ``DIR/.fuse-host.sock`` (0600, root
only: the volume key comes that way, the device as a descriptor). Each volume is mounted at ``DIR/NAME`` by
mfusepy in a thread of its own and served by libfuse's multi-threaded loop, as the server of one volume did.

A volume ends when its mount is unmounted (FuseActivator.deactivate) or on ``remove``; the others go on. The
host exits once it serves none. SIGTERM, SIGINT and SIGHUP stop every volume (libfuse unmounts each), then
the host exits. Signals are the main thread's alone: libfuse's own handlers are process-wide and would stop
one session only, so they are never installed (Python's are in place first; libfuse keeps those it finds).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import fcntl
import os
import select
import signal
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any, Final

from volumed.storage.activation._fuse_channel import peer_uid, receive, reply
from volumed.storage.activation._fuse_control import (
    LOCK_NAME,
    SOCKET_NAME,
    AddRequest,
    ControlError,
    add_request,
    name_request,
)
from volumed.storage.activation._fuse_server import _operations
from volumed.storage.activation._hardening import forbid_core_dumps
from volumed.storage.luks2.payload import PayloadStream

if TYPE_CHECKING:
    import io
    from pathlib import Path

READY_TIMEOUT: Final = 30.0
STOP_TIMEOUT: Final = 10.0
IDLE_POLL: Final = 1.0
_SIGNALS: Final = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
_WAKE: Final = signal.SIGUSR1


def _log(message: str) -> None:
    print(f"volumed-fuse-host[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


class _Session:
    """One volume: its device, decrypting stream, mount thread, and libfuse's ``struct fuse`` while it runs.

    ``fuse`` is set from FUSE's init (in its request context) and cleared from its destroy, both under
    ``lock``: :meth:`stop` calls ``fuse_exit`` on it and signals the thread only under the same lock, so never
    on a session libfuse has freed or a thread that has ended.
    """

    def __init__(
        self, request: AddRequest, mountpoint: Path, device: io.FileIO, stream: PayloadStream
    ) -> None:
        self.request = request
        self.mountpoint = mountpoint
        self.device = device
        self.stream = stream
        self.lock = threading.Lock()
        self.fuse: int | None = None
        self.answer = ""
        self.answered = threading.Event()
        self.thread: threading.Thread | None = None

    # Lifecycle, called from the FUSE operations

    def send(self, line: str) -> None:
        if line == "ready":
            import mfusepy

            with self.lock:
                self.fuse = mfusepy._libfuse.fuse_get_context().contents.fuse
        if not self.answered.is_set():
            self.answer = line
            self.answered.set()

    def ended(self) -> None:
        with self.lock:
            self.fuse = None

    # the mount thread

    def run(self, operations: Any, on_end: Any) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)  # the main thread's; _WAKE stays open
        import mfusepy

        name = self.request.name
        try:
            mfusepy.FUSE(operations, str(self.mountpoint), foreground=True, fsname=f"volumed:{name}",
                         subtype="volumed")  # fmt: skip
        except BaseException as exc:
            self.send(f"error: FUSE mount failed: {exc}")
            _log(f"{name}: {exc}")
        finally:
            self.ended()
            self.send("error: FUSE exited before it was ready")
            self.stream.close()
            self.device.close()
            on_end(self)

    @property
    def serving(self) -> bool:
        return self.answer == "ready" and self.thread is not None and self.thread.is_alive()

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """End the session as a signal ends a server of one volume (libfuse unmounts it); whether it ended."""
        import mfusepy

        thread = self.thread
        if thread is None:
            return True
        waited = 0.0
        while thread.is_alive() and waited < timeout:
            with self.lock:
                if self.fuse is not None and thread.ident is not None:
                    mfusepy._libfuse.fuse_exit(ctypes.c_void_p(self.fuse))
                    signal.pthread_kill(thread.ident, _WAKE)  # wakes libfuse's loop out of sem_wait
            thread.join(0.1)
            waited += 0.1
        return not thread.is_alive()


class Host:
    """The sessions of one runtime directory and the control socket that adds and removes them."""

    def __init__(self, runtime_dir: Path) -> None:
        self._dir = runtime_dir
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self._adding = threading.Lock()
        self._connections = 0
        self._stopping = False
        self._socket_inode = 0
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def serve(self, ready_fd: int) -> int:
        forbid_core_dumps()  # before any key arrives: a core of this process holds every volume's XTS key
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)  # a starter's blocked mask is inherited by exec
        for number in _SIGNALS:
            signal.signal(number, self._on_signal)
        signal.signal(_WAKE, lambda *_: None)
        signal.set_wakeup_fd(self._wake_write)
        try:
            listener = self._listen()
        except OSError as exc:
            _signal(ready_fd, f"error: cannot listen on {self._dir / SOCKET_NAME}: {exc}")
            return 1
        _signal(ready_fd, "ready")
        _log(f"serving volumes of {self._dir}")
        try:
            self._loop(listener)
        finally:
            self._stop_all()
            with contextlib.suppress(OSError):
                if os.stat(self._dir / SOCKET_NAME).st_ino == self._socket_inode:  # not a successor's
                    os.unlink(self._dir / SOCKET_NAME)
            listener.close()
        return 0

    def _listen(self) -> socket.socket:
        path = self._dir / SOCKET_NAME
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a dead host's: whoever started this one holds the lock
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        previous = os.umask(0o177)
        try:
            listener.bind(str(path))
        finally:
            os.umask(previous)
        os.chmod(path, 0o600)
        self._socket_inode = os.stat(path).st_ino
        listener.listen(socket.SOMAXCONN)  # a burst of status calls waits here; 16 refused some (EAGAIN)
        return listener

    def _loop(self, listener: socket.socket) -> None:
        while True:
            idle = self._idle()
            watched: list[int] = [listener.fileno(), self._wake_read]
            readable, _, _ = select.select(watched, [], [], IDLE_POLL if idle else None)
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_read, 512):
                    pass
            if self._stopping:
                return
            if listener.fileno() in readable:
                connection, _ = listener.accept()
                with self._lock:
                    self._connections += 1
                threading.Thread(target=self._handle, args=(connection,), daemon=True).start()
            elif self._idle() and self._may_exit(listener):
                _log("no volume left to serve; exiting")
                return

    def _idle(self) -> bool:
        with self._lock:
            return not self._sessions and not self._connections

    def _may_exit(self, listener: socket.socket) -> bool:
        """Whether no one is handing this host a volume: the lock is free and no connection waits."""
        descriptor = os.open(self._dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        pending, _, _ = select.select([listener], [], [], 0)
        if pending or not self._idle():
            os.close(descriptor)
            return False
        os.unlink(self._dir / SOCKET_NAME)  # before the lock goes (at exit): a starter then starts anew
        return True

    def _on_signal(self, number: int, frame: object) -> None:
        self._stopping = True

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_write, b"\0")

    def _ended(self, session: _Session) -> None:
        with self._lock:
            if self._sessions.get(session.request.name) is session:
                del self._sessions[session.request.name]
        _log(f"{session.request.name}: no longer served")
        self._wake()

    def _stop_all(self) -> None:
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            session.stop()

    # requests

    def _handle(self, connection: socket.socket) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            connection.settimeout(READY_TIMEOUT)
            if peer_uid(connection) not in (0, os.geteuid()):
                reply(connection, {"ok": False, "error": "only root may hand the FUSE host volumes"})
                return
            try:
                message, key, fd = receive(connection)
            except Exception as exc:  # ControlError, OSError, anything unforeseen: an answer all the same
                reply(connection, {"ok": False, "error": f"bad request: {str(exc)[:800]}"})
                return
            reply(connection, self._answer(message, key, fd))
        finally:
            connection.close()
            with self._lock:
                self._connections -= 1
            self._wake()

    def _answer(self, message: dict[str, object], key: bytes, fd: int | None) -> dict[str, object]:
        op = message.get("op")
        try:
            if op == "add":
                return self._add(add_request(message), key, fd)
            if fd is not None:
                _close(fd)
            if op == "list":
                return {"ok": True, "pid": os.getpid(), "volumes": self._list()}
            if op == "remove":
                return {"ok": True, "removed": self._remove(name_request(message, "remove"))}
        except ControlError as exc:
            if op == "add" and fd is not None:
                _close(fd)
            return {"ok": False, "error": f"bad request: {exc}"}
        except Exception as exc:  # unforeseen (an OSError, say): the client hears why; _add closed the fd
            _log(f"{op} failed: {type(exc).__name__}: {exc}")
            return {"ok": False, "error": f"error: {type(exc).__name__}: {str(exc)[:800]}"}
        return {"ok": False, "error": f"unknown request {op!r}"}

    def _list(self) -> list[dict[str, object]]:
        with self._lock:
            sessions = [session for session in self._sessions.values() if session.serving]
        return [
            {
                "name": session.request.name,
                "device": session.request.device,
                "offset": session.request.offset,
                "size": session.stream.size,
                "mountpoint": str(session.mountpoint),
            }
            for session in sessions
        ]

    def _remove(self, name: str) -> bool:
        with self._lock:
            session = self._sessions.get(name)
        if session is None:
            return False
        if not session.stop():
            raise ControlError(f"{name}: its FUSE session did not end within {STOP_TIMEOUT:.0f} s")
        _log(f"{name}: removed")
        return True

    def _add(self, request: AddRequest, key: bytes, fd: int | None) -> dict[str, object]:
        if fd is None:
            raise ControlError("add: no device descriptor came with the request")
        with self._adding:
            try:
                self._remove(request.name)  # a dead or half-made view of that name: FuseActivator cleaned it
                device = os.fdopen(fd, "r+b", buffering=0)
            except BaseException:
                _close(fd)
                raise
            return self._start(request, key, device)

    def _start(self, request: AddRequest, key: bytes, device: io.FileIO) -> dict[str, object]:
        """Serve ``request`` from ``device``: a session's thread takes it over, else it is closed here."""
        session: _Session | None = None
        try:
            mountpoint = self._dir / request.name
            try:
                if not mountpoint.is_dir():
                    raise FileNotFoundError(errno.ENOENT, f"{mountpoint} is not a directory")
                stream = PayloadStream(
                    device,
                    offset=request.offset,
                    size=request.size,
                    sector_size=request.sector_size,
                    iv_tweak=request.iv_tweak,
                    volume_key=key,
                    cipher=request.cipher,
                )
            except Exception as exc:
                return {"ok": False, "error": f"error: {type(exc).__name__}: {exc}"}
            del key
            session = _Session(request, mountpoint, device, stream)
            operations = _operations(request.name, stream, device.fileno(), request.offset, session)
            session.thread = threading.Thread(
                target=session.run, args=(operations, self._ended), name=f"fuse:{request.name}", daemon=True
            )
            with self._lock:
                self._sessions[request.name] = session
            session.thread.start()
        except BaseException:
            if session is not None:
                with self._lock:
                    if self._sessions.get(request.name) is session:
                        del self._sessions[request.name]
            device.close()
            raise
        finally:
            if session is None:
                device.close()
        if not session.answered.wait(READY_TIMEOUT):
            session.stop()
            return {"ok": False, "error": f"error: FUSE did not start within {READY_TIMEOUT:.0f} s"}
        if session.answer != "ready":
            return {"ok": False, "error": session.answer}
        _log(f"{request.name}: serving {request.device} at offset {request.offset}")
        return {"ok": True, "pid": os.getpid()}


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _signal(fd: int, line: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, (line.replace("\n", " ") + "\n").encode())
    os.close(fd)


def main(argv: list[str] | None = None) -> int:
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="volumed-fuse-host", description=__doc__)
    parser.add_argument("--host", action="store_true", required=True)
    parser.add_argument("--runtime-dir", required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    args = parser.parse_args(argv)
    return Host(Path(args.runtime_dir)).serve(args.ready_fd)


__all__ = ["Host", "main"]
