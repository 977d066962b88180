"""A volume as a region of a block device or image file: path + offset + size."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from ._device import BLKFLSBUF, _size_of_fd, device_size
from ._errors import BlockDeviceError, RegionBoundsError

if TYPE_CHECKING:
    from types import TracebackType

_ZERO_CHUNK = 1024 * 1024


@final
@dataclass(frozen=True)
class Region:
    """``size`` bytes of ``path`` starting at byte ``offset``: a whole disk, a partition of an image, ...

    A value: opening it (``open``) gives a handle whose reads and writes are relative to ``offset`` and
    refused outside ``size``.
    """

    path: str
    offset: int
    size: int

    def __post_init__(self) -> None:
        if self.offset < 0 or self.size < 0:
            raise ValueError(
                f"region of {self.path} has a negative offset or size ({self.offset}, {self.size})"
            )

    @classmethod
    def whole(cls, path: str | os.PathLike[str]) -> Region:
        """The whole device or file."""
        return cls(os.fspath(path), 0, device_size(path))

    def sub(self, offset: int, size: int) -> Region:
        """A region inside this one (offsets relative to this region)."""
        if offset < 0 or size < 0 or offset + size > self.size:
            raise RegionBoundsError(
                f"sub-region {offset}+{size} does not fit region {self.path}@{self.offset}+{self.size}"
            )
        return Region(self.path, self.offset + offset, size)

    def open(self, *, writable: bool = False, exclusive: bool = False) -> RegionHandle:
        """Open the region. ``exclusive`` uses ``O_EXCL`` on block devices: it fails with EBUSY when the
        device (or a partition of it) is mounted or otherwise claimed by the kernel.
        """
        flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_CLOEXEC
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise BlockDeviceError(exc.errno, f"cannot open {self.path}: {exc.strerror}") from None
        if exclusive and stat.S_ISBLK(st.st_mode):
            flags |= os.O_EXCL
        try:
            fd = os.open(self.path, flags)
        except OSError as exc:
            raise BlockDeviceError(exc.errno, f"cannot open {self.path}: {exc.strerror}") from None
        try:
            actual = _size_of_fd(fd, self.path)
            if self.offset + self.size > actual:
                raise RegionBoundsError(
                    f"region {self.offset}+{self.size} runs past the end of {self.path} ({actual} bytes)"
                )
        except BaseException:
            os.close(fd)
            raise
        return RegionHandle(self, fd)


@final
class RegionHandle:
    """An open region. Not thread-safe; one handle per worker thread."""

    def __init__(self, region: Region, fd: int) -> None:
        self.region = region
        self._fd = fd

    def __enter__(self) -> RegionHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.region.size:
            raise RegionBoundsError(
                f"access {offset}+{length} is outside region {self.region.path}@{self.region.offset}"
                f"+{self.region.size}"
            )

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset``; shorter only at the end of the region."""
        length = max(0, min(length, self.region.size - offset))
        self._check(offset, length)
        chunks: list[bytes] = []
        done = 0
        while done < length:
            chunk = os.pread(self._fd, length - done, self.region.offset + offset + done)
            if not chunk:
                break
            chunks.append(chunk)
            done += len(chunk)
        return b"".join(chunks)

    def write(self, offset: int, data: bytes) -> None:
        """Write all of ``data`` at ``offset``."""
        self._check(offset, len(data))
        view = memoryview(data)
        done = 0
        while done < len(data):
            done += os.pwrite(self._fd, view[done:], self.region.offset + offset + done)

    def zero(self, offset: int, length: int) -> None:
        """Overwrite ``length`` bytes at ``offset`` with zeros."""
        self._check(offset, length)
        block = bytes(min(length, _ZERO_CHUNK))
        done = 0
        while done < length:
            n = min(len(block), length - done)
            self.write(offset + done, block[:n])
            done += n

    def sync(self) -> None:
        """fsync the device or file."""
        os.fsync(self._fd)

    def drop_cache(self) -> None:
        """Drop the kernel's cached pages of a block device (``BLKFLSBUF``); no-op for files.

        Two block devices over the same bytes (a whole-disk loop device and a loop device over one of its
        partitions) have separate page caches, so a read through one can miss a write through the other.
        Best effort: without CAP_SYS_ADMIN the cache stays as it is.
        """
        if not stat.S_ISBLK(os.fstat(self._fd).st_mode):
            return
        with contextlib.suppress(OSError):
            fcntl.ioctl(self._fd, BLKFLSBUF)
