"""Byte-range access to a LUKS2 header or data area inside a file: a whole image, a partition at an offset
of a disk image, or a block device. All LUKS2 I/O goes through here (reads, writes, fsync, locks).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, BinaryIO

from . import faults
from ._errors import BusyError, DeviceError, Luks2Error, ReadOnlyError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

LOCK_TIMEOUT_S = 5.0

#: ``struct flock`` of 64-bit Linux (l_type, l_whence, l_start, l_len, l_pid and padding), for OFD locks.
_FLOCK = struct.Struct("hhqqi4x")


class Region:
    """``size`` bytes of ``file`` starting at ``offset``; every offset given to the methods is relative.

    Args:
        file: an open binary file (``r+b`` to write). Writes go through ``file.seek``/``file.write`` so a test
            can wrap the file and stop after any write.
        offset: where the region starts in the file.
        size: the region's length; None means to the end of the file.
        writable: whether writes are allowed at all.
        name: how errors name the region (a path); never contents.
    """

    def __init__(
        self,
        file: BinaryIO,
        *,
        offset: int = 0,
        size: int | None = None,
        writable: bool = True,
        name: str = "",
    ) -> None:
        if offset < 0 or (size is not None and size < 0):
            raise Luks2Error(f"{name or 'device'}: offset and size must not be negative")
        self._file = file
        self.offset = offset
        self._size = size
        self.writable = writable
        self.name = name or getattr(file, "name", "<file>")
        if size is not None:
            end = file.seek(0, os.SEEK_END)
            if offset + size > end:
                raise DeviceError(
                    f"{self.name}: the volume ({size} bytes at offset {offset}) runs past the end of the "
                    f"device ({end} bytes)"
                )

    def __repr__(self) -> str:
        return f"Region(name={self.name!r}, offset={self.offset}, size={self._size})"

    @property
    def file(self) -> BinaryIO:
        """The underlying file (for the payload stream, which adds ``offset`` itself)."""
        return self._file

    @property
    def size(self) -> int:
        """Bytes available in the region (for a whole file: its current length)."""
        if self._size is not None:
            return self._size
        end = self._file.seek(0, os.SEEK_END)
        return max(0, end - self.offset)

    def read(self, at: int, length: int) -> bytes:
        """Read up to ``length`` bytes at ``at`` (fewer at the end of the region)."""
        length = max(0, min(length, self.size - at))
        if length == 0:
            return b""
        self._file.seek(self.offset + at)
        chunks = []
        while length > 0:
            chunk = self._file.read(length)
            if not chunk:
                break
            chunks.append(chunk)
            length -= len(chunk)
        return b"".join(chunks)

    def write(self, at: int, data: bytes) -> None:
        """Write ``data`` at ``at``; refuses to write past the region's end."""
        if not self.writable:
            raise ReadOnlyError(f"{self.name}: opened read-only")
        if self._size is not None and at + len(data) > self._size:
            raise Luks2Error(f"{self.name}: write of {len(data)} bytes at {at} passes the end of the volume")
        self._file.seek(self.offset + at)
        self._file.write(data)
        faults.after_write(self._file)  # test-only crash point; does nothing unless armed

    def sync(self) -> None:
        """Flush and fsync, so a later write cannot overtake this one on disk."""
        self._file.flush()
        with contextlib.suppress(OSError, ValueError, AttributeError):  # in-memory files have no descriptor
            os.fsync(self._file.fileno())

    @contextmanager
    def locked(self, *, exclusive: bool, timeout: float | None = None) -> Iterator[None]:
        """Hold the header lock; BusyError after ``timeout`` seconds (default ``LOCK_TIMEOUT_S``).

        The lock covers this region's own bytes only: an open-file-description (OFD) byte-range lock over
        [offset, offset + size) — to the end of the file when the size is open — so the volumes of one disk
        image (or of one disk opened at offsets) never wait for each other's format or key-slot KDF, while
        two open files of the same volume, in one process or two, still exclude each other. A region at
        offset 0 is a device as cryptsetup sees it: it also takes flock() on the file, as cryptsetup does on
        regular files, so the two never write one header at the same time. A read-only file takes no
        exclusive lock (ReadOnlyError).
        """
        try:
            fd = self._file.fileno()
        except (OSError, ValueError, AttributeError):
            yield
            return
        if exclusive and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise ReadOnlyError(f"{self.name}: opened read-only")
        deadline = time.monotonic() + (LOCK_TIMEOUT_S if timeout is None else timeout)
        whole_file = self.offset == 0
        if whole_file:
            self._wait(lambda: _try_flock(fd, exclusive), deadline)
        try:
            self._wait(lambda: self._try_range(fd, fcntl.F_WRLCK if exclusive else fcntl.F_RDLCK), deadline)
            try:
                yield
            finally:
                self._try_range(fd, fcntl.F_UNLCK)
        finally:
            if whole_file:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _wait(self, attempt: Callable[[], bool], deadline: float) -> None:
        while not attempt():
            if time.monotonic() >= deadline:
                raise BusyError(f"{self.name}: the header is locked by another process")
            time.sleep(0.05)

    def _try_range(self, fd: int, lock_type: int) -> bool:
        """One non-blocking F_OFD_SETLK over the region; False: another open file holds a conflicting lock."""
        length = 0 if self._size is None else max(self._size, 1)  # 0: to the end of the file, however long
        request = _FLOCK.pack(lock_type, os.SEEK_SET, self.offset, length, 0)
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, request)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            return False
        return True


def _try_flock(fd: int, exclusive: bool) -> bool:
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        return False
    return True
