"""Reading and writing the two ADV copies on a device or a region of an image, under flock."""

from __future__ import annotations

import enum
import fcntl
import os
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, final

from ._errors import MetaCorruptError, MetaDeviceError, MetaValueError
from .c_adv import (
    ADV_SIZE,
    BLOCK_LENGTH,
    DATA_LENGTH,
    ENTRY_OVERHEAD,
    MAX_TAG,
    InvalidBlockError,
    decode_block,
    encode_block,
    used_bytes,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_COPY_OFFSETS: Final = (0, BLOCK_LENGTH)
DEFAULT_LOCK_TIMEOUT: Final = 10.0
_LOCK_POLL: Final = 0.02


class MetaState(enum.StrEnum):
    """What was found: both copies valid, one valid, nothing written yet (all zero), or no valid copy."""

    OK = "ok"
    DEGRADED = "degraded"
    BLANK = "blank"
    CORRUPT = "corrupt"


@dataclass(frozen=True, slots=True)
class CopyStatus:
    """One of the two ADV copies.

    Attributes:
        offset: byte offset of the copy inside the META area.
        error: why the copy is not valid, None when it is.
    """

    offset: int
    error: str | None

    @property
    def valid(self) -> bool:
        """Whether this copy passed the magic and checksum checks."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class MetaContents:
    """The tags of a META area and the health of its two copies.

    Attributes:
        tags: tag -> value, from the first valid copy (empty when none is valid).
        copies: the status of copy 0 (offset 0) and copy 1 (offset 256 KiB).
        state: the summary of both copies.
    """

    tags: Mapping[int, bytes]
    copies: tuple[CopyStatus, CopyStatus]
    state: MetaState

    @property
    def free_bytes(self) -> int:
        """Bytes left in the data area (each new entry also costs 8 bytes of header)."""
        return DATA_LENGTH - used_bytes(self.tags)


def _check_tag(tag: int) -> None:
    if not 1 <= tag <= MAX_TAG:
        raise MetaValueError(f"tag {tag} is out of range (1 to {MAX_TAG})")


def _decode(area: bytes) -> tuple[MetaContents, bytes | None]:
    """The contents of a 512 KiB area and the raw bytes of the copy they came from."""
    copies: list[CopyStatus] = []
    chosen: dict[int, bytes] | None = None
    chosen_raw: bytes | None = None
    for offset in _COPY_OFFSETS:
        raw = area[offset : offset + BLOCK_LENGTH]
        try:
            tags = decode_block(raw)
        except InvalidBlockError as error:
            copies.append(CopyStatus(offset, str(error)))
            continue
        copies.append(CopyStatus(offset, None))
        if chosen is None:
            chosen, chosen_raw = tags, raw
    valid = sum(copy.valid for copy in copies)
    if valid == 2:
        state = MetaState.OK
    elif valid == 1:
        state = MetaState.DEGRADED
    elif not any(area):
        state = MetaState.BLANK
    else:
        state = MetaState.CORRUPT
    contents = MetaContents(MappingProxyType(dict(chosen or {})), (copies[0], copies[1]), state)
    return contents, chosen_raw


@final
class MetaPartition:
    """The META area of a device: a whole META partition, or a region of a disk image at ``offset``.

    Reads take a shared ``flock`` and never write; writes take an exclusive ``flock``, re-read under the lock,
    write copy 0, fsync, then copy 1, fsync, so a crash leaves at least one valid copy. Blocking: call from a
    worker thread in async code. A write to an area with no valid copy that is not blank is refused (it may
    not be META at all) unless ``force=True``.

    Args:
        path: the device or image file.
        offset: where the META area starts inside ``path`` (0 for a partition device).
        lock_timeout: seconds to wait for a lock another process holds; None waits forever.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        offset: int = 0,
        lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        if offset < 0:
            raise ValueError(f"offset must not be negative, got {offset}")
        self.path = os.fspath(path)
        self.offset = offset
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"MetaPartition({self.path!r}, offset={self.offset})"

    def _open(self, flags: int) -> int:
        try:
            return os.open(self.path, flags | os.O_CLOEXEC)
        except OSError as error:
            raise MetaDeviceError(f"cannot open {self.path}: {error.strerror}") from None

    def _read_area(self, fd: int) -> bytes:
        try:
            size = os.lseek(fd, 0, os.SEEK_END)
            if size < self.offset + ADV_SIZE:
                raise MetaDeviceError(
                    f"{self.path} is too small for META at offset {self.offset}: "
                    f"needs {ADV_SIZE} bytes there, has {max(size - self.offset, 0)}"
                )
            area = os.pread(fd, ADV_SIZE, self.offset)
        except OSError as error:
            raise MetaDeviceError(f"cannot read {self.path}: {error.strerror}") from None
        if len(area) != ADV_SIZE:
            raise MetaDeviceError(f"short read from {self.path}: {len(area)} of {ADV_SIZE} bytes")
        return area

    def _lock(self, fd: int, operation: int) -> None:
        if self.lock_timeout is None:
            try:
                fcntl.flock(fd, operation)
            except OSError as error:
                raise MetaDeviceError(f"cannot lock {self.path}: {error.strerror}") from None
            return
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(fd, operation | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise MetaDeviceError(
                        f"{self.path} is locked by another process (waited {self.lock_timeout:g} s)"
                    ) from None
                time.sleep(_LOCK_POLL)
            except OSError as error:
                raise MetaDeviceError(f"cannot lock {self.path}: {error.strerror}") from None

    def read(self) -> MetaContents:
        """Read both copies under a shared lock; never writes, never raises for bad contents.

        Raises:
            MetaDeviceError: the device cannot be opened or read, or is too small.
        """
        fd = self._open(os.O_RDONLY)
        try:
            self._lock(fd, fcntl.LOCK_SH)
            contents, _ = _decode(self._read_area(fd))
            return contents
        finally:
            os.close(fd)

    def get(self, tag: int) -> bytes | None:
        """The value of ``tag``, None when it is not set (or when no copy is valid)."""
        _check_tag(tag)
        return self.read().tags.get(tag)

    def set(self, tag: int, value: bytes, *, force: bool = False) -> bool:
        """Store ``value`` under ``tag``; returns False (and writes nothing) when it was already stored.

        Raises:
            MetaValueError: the tag is out of range or the value does not fit; nothing is written.
            MetaCorruptError: no valid copy and the area is not blank (see ``force``).
            MetaDeviceError: the device cannot be opened, locked, read or written.
        """
        _check_tag(tag)
        value = bytes(value)

        def change(tags: dict[int, bytes]) -> bool:
            old = tags.pop(tag, None)
            if old == value:
                tags[tag] = value
                return False
            room = DATA_LENGTH - used_bytes(tags) - ENTRY_OVERHEAD
            if len(value) > room:
                raise MetaValueError(
                    f"value for tag {tag} is {len(value)} bytes; META has room for {max(room, 0)} "
                    f"({DATA_LENGTH} bytes in total, {ENTRY_OVERHEAD} per entry header)"
                )
            tags[tag] = value
            return True

        return self._modify(change, force=force)

    def delete(self, tag: int, *, force: bool = False) -> bool:
        """Remove ``tag``; returns whether it was set (nothing is written when it was not).

        Raises:
            MetaCorruptError: no valid copy and the area is not blank (see ``force``).
            MetaDeviceError: the device cannot be opened, locked, read or written.
        """
        _check_tag(tag)

        def change(tags: dict[int, bytes]) -> bool:
            return tags.pop(tag, None) is not None

        return self._modify(change, force=force)

    def repair(self) -> bool:
        """Copy the valid copy over the invalid one; returns whether anything was written.

        Raises:
            MetaCorruptError: neither copy is valid (and the area is not blank): nothing to repair from.
            MetaDeviceError: the device cannot be opened, locked, read or written.
        """
        fd = self._open(os.O_RDWR)
        try:
            self._lock(fd, fcntl.LOCK_EX)
            contents, raw = _decode(self._read_area(fd))
            if contents.state is MetaState.CORRUPT:
                raise MetaCorruptError(
                    f"no valid META copy at {self.path} offset {self.offset} to repair from"
                )
            if contents.state is not MetaState.DEGRADED or raw is None:
                return False
            for copy in contents.copies:
                if not copy.valid:
                    self._write_copy(fd, copy.offset, raw)
            return True
        finally:
            os.close(fd)

    def _modify(self, change: Callable[[dict[int, bytes]], bool], *, force: bool) -> bool:
        fd = self._open(os.O_RDWR)
        try:
            self._lock(fd, fcntl.LOCK_EX)
            contents, _ = _decode(self._read_area(fd))
            if contents.state is MetaState.CORRUPT and not force:
                raise MetaCorruptError(
                    f"no valid META copy at {self.path} offset {self.offset} and the area is not blank: "
                    "refusing to overwrite it (is this the META partition?)"
                )
            tags = dict(contents.tags)
            if not change(tags):
                return False
            block = encode_block(tags)
            for offset in (0, BLOCK_LENGTH):
                self._write_copy(fd, offset, block)
            return True
        finally:
            os.close(fd)

    def _write_copy(self, fd: int, offset: int, block: bytes) -> None:
        try:
            written = os.pwrite(fd, block, self.offset + offset)
            if written != len(block):
                raise MetaDeviceError(f"short write to {self.path}: {written} of {len(block)} bytes")
            os.fsync(fd)
        except OSError as error:
            raise MetaDeviceError(f"cannot write {self.path}: {error.strerror}") from None
