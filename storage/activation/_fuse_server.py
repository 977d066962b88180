"""The FUSE server behind the ``fuse`` backend: one decrypted file, ``<mountpoint>/<name>``, over a segment.

Run by :class:`FuseActivator` as ``python -m volumed.storage.activation._fuse_server ...`` in its own session,
so it outlives the process (and event loop) that started it. The volume key arrives through an inherited pipe
(``--key-fd``), never argv or the environment; readiness (or the reason for failing) goes back through
another (``--ready-fd``). It serves until unmounted (``umount``/``fusermount3 -u``) or sent SIGTERM/SIGINT,
on which libfuse unmounts and this process exits.
"""

from __future__ import annotations

import argparse
import errno
import os
import stat
import sys
import threading
import time
from typing import Any, Protocol

from volumed.storage.activation._hardening import forbid_core_dumps
from volumed.storage.luks2.payload import PayloadStream

_MAX_KEY = 64
_MAX_REQUEST = 1 << 20


def _read_key(fd: int) -> bytes:
    chunks = bytearray()
    while chunk := os.read(fd, 256):
        chunks += chunk
        if len(chunks) > _MAX_KEY:
            raise ValueError("more key material than any supported cipher takes arrived on --key-fd")
    os.close(fd)
    return bytes(chunks)


class _Signal:
    """The ready pipe: one line, ``ready`` or ``error: <why>``, then closed."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd
        self._lock = threading.Lock()

    def send(self, line: str) -> None:
        with self._lock:
            if self._fd is None:
                return
            try:
                os.write(self._fd, (line.replace("\n", " ") + "\n").encode())
            except OSError:
                pass
            finally:
                os.close(self._fd)
                self._fd = None

    def ended(self) -> None:
        """The session is being destroyed: nothing to do for a server of one volume."""


class Lifecycle(Protocol):
    """What a decrypted view tells its server: ``send`` ``ready`` (from FUSE's init, in its request context)
    or ``error: <why>``; ``ended`` from FUSE's destroy, just before libfuse frees the session."""

    def send(self, line: str) -> None: ...

    def ended(self) -> None: ...


def _device_end(device_fd: int) -> int:
    """The device's size now, through a descriptor of its own (the stream's file position is left alone)."""
    fd = os.open(f"/proc/self/fd/{device_fd}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def _operations(name: str, stream: PayloadStream, device_fd: int, offset: int, ready: Lifecycle) -> Any:
    import mfusepy

    file_path = "/" + name
    started = time.time()

    class DecryptedView(mfusepy.Operations):  # type: ignore[misc]
        use_ns = True

        def init_with_config(self, conn: Any, config: Any) -> None:
            if conn is not None:  # let the kernel send big requests: per-request costs dominate in Python
                conn.max_readahead = max(conn.max_readahead, _MAX_REQUEST)
                conn.max_write = max(conn.max_write, _MAX_REQUEST)
            ready.send("ready")

        def destroy(self, path: str) -> None:
            ready.ended()

        def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
            stamp = int(started * 1e9)
            times = {"st_atime": stamp, "st_mtime": stamp, "st_ctime": stamp}
            if path == "/":
                return {"st_mode": stat.S_IFDIR | 0o700, "st_nlink": 2, "st_size": 0, **times}
            if path == file_path:
                return {"st_mode": stat.S_IFREG | 0o600, "st_nlink": 1, "st_size": stream.size, **times}
            raise mfusepy.FuseOSError(errno.ENOENT)

        def readdir(self, path: str, fh: int) -> list[str]:
            if path != "/":
                raise mfusepy.FuseOSError(errno.ENOTDIR)
            return [".", "..", name]

        def open(self, path: str, flags: int) -> int:
            if path != file_path:
                raise mfusepy.FuseOSError(errno.ENOENT)
            return 0

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            try:
                return stream.pread(size, offset)
            except OSError as exc:
                raise mfusepy.FuseOSError(exc.errno or errno.EIO) from exc

        def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
            try:
                return stream.pwrite(data, offset)
            except OSError as exc:
                raise mfusepy.FuseOSError(exc.errno or errno.EIO) from exc

        def truncate(self, path: str, length: int, fh: int | None = None) -> int:
            """Growing is how FuseActivator.resize asks for a segment that grew with its device; no shrink."""
            if length == stream.size:
                return 0
            if length < stream.size:
                raise mfusepy.FuseOSError(errno.EPERM)
            if length % stream.sector_size or offset + length > _device_end(device_fd):
                raise mfusepy.FuseOSError(errno.EINVAL)
            stream.grow(length)
            return 0

        def flush(self, path: str, fh: int) -> int:
            return 0

        def fsync(self, path: str, datasync: int, fh: int) -> int:
            stream.flush()
            (os.fdatasync if datasync else os.fsync)(device_fd)
            return 0

        def release(self, path: str, fh: int) -> int:
            return 0

        def statfs(self, path: str) -> dict[str, int]:
            return {"f_bsize": stream.sector_size, "f_frsize": stream.sector_size, "f_namemax": 255}

    return DecryptedView()


def main(argv: list[str] | None = None) -> int:
    if "--host" in (sys.argv[1:] if argv is None else argv):  # every volume of a runtime directory
        from volumed.storage.activation._fuse_host import main as host_main

        return host_main(argv)
    parser = argparse.ArgumentParser(prog="volumed-fuse-server", description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--mountpoint", required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--offset", type=int, required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--sector-size", type=int, required=True)
    parser.add_argument("--iv-tweak", type=int, required=True)
    parser.add_argument("--cipher", required=True)
    parser.add_argument("--key-fd", type=int, required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    args = parser.parse_args(argv)
    ready = _Signal(args.ready_fd)
    try:
        forbid_core_dumps()  # before the key arrives: a core of this process holds the whole XTS key
        key = _read_key(args.key_fd)
        device = open(args.device, "r+b", buffering=0)  # noqa: SIM115 - lives as long as the server
        stream = PayloadStream(
            device,
            offset=args.offset,
            size=args.size,
            sector_size=args.sector_size,
            iv_tweak=args.iv_tweak,
            volume_key=key,
            cipher=args.cipher,
        )
        del key
        operations = _operations(args.name, stream, device.fileno(), args.offset, ready)
        import mfusepy
    except Exception as exc:  # report any startup failure through the ready pipe
        ready.send(f"error: {type(exc).__name__}: {exc}")
        return 1
    try:
        mfusepy.FUSE(
            operations,
            args.mountpoint,
            foreground=True,
            fsname=f"volumed:{args.name}",
            subtype="volumed",
        )
    except BaseException as exc:
        ready.send(f"error: FUSE mount failed: {exc}")
        print(f"volumed-fuse-server {args.name}: {exc}", file=sys.stderr)
        return 1
    finally:
        stream.close()
        device.close()
    ready.send("error: FUSE exited before it was ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
