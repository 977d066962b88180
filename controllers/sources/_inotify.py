"""inotify through libc (ctypes): watch a directory for the files of interest being written, moved, deleted;
or one file or device node for being closed after a write (udev's "watch").

No third-party binding: three libc calls and a 16-byte header per event. The descriptor is non-blocking and
the wait is the event loop's (``anyio.wait_readable``), so no thread is held while nothing changes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final

import anyio

from ._burst import LONGEST, SETTLE, burst_end

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from types import TracebackType

# linux/inotify.h
IN_MODIFY: Final = 0x00000002
IN_ATTRIB: Final = 0x00000004
IN_CLOSE_WRITE: Final = 0x00000008
IN_MOVED_FROM: Final = 0x00000040
IN_MOVED_TO: Final = 0x00000080
IN_CREATE: Final = 0x00000100
IN_DELETE: Final = 0x00000200
IN_DELETE_SELF: Final = 0x00000400
IN_MOVE_SELF: Final = 0x00000800
IN_UNMOUNT: Final = 0x00002000
IN_Q_OVERFLOW: Final = 0x00004000
IN_IGNORED: Final = 0x00008000
IN_ONLYDIR: Final = 0x01000000
IN_NONBLOCK: Final = os.O_NONBLOCK
IN_CLOEXEC: Final = os.O_CLOEXEC

# A file is complete when its writer closes it or renames it into place. IN_CREATE and IN_MODIFY are left
# out on purpose: a reader woken by them sees a file still being written (empty, or half a config).
FILE_DONE: Final = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE
# The watched directory itself went away (removed, moved, or its file system unmounted): the watch is dead.
WATCH_LOST: Final = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED

_HEADER: Final = struct.Struct("=iIII")  # struct inotify_event: wd, mask, cookie, len (then name[len])
_READ_SIZE: Final = 64 * 1024


@final
@dataclass(frozen=True, slots=True)
class InotifyEvent:
    """One event: the watch it came from, its mask bits, and the file name inside a watched directory."""

    wd: int
    mask: int
    cookie: int
    name: str


def parse_events(data: bytes) -> list[InotifyEvent]:
    """The events of one ``read`` of an inotify descriptor (names are NUL-padded by the kernel).

    Raises:
        ValueError: a truncated record (the kernel never returns one; a bad buffer would).
    """
    events: list[InotifyEvent] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _HEADER.size:
            raise ValueError(f"truncated inotify event header at byte {offset} of {len(data)}")
        wd, mask, cookie, length = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size
        if len(data) - offset < length:
            raise ValueError(f"truncated inotify event name at byte {offset} of {len(data)}")
        raw = data[offset : offset + length].split(b"\0", 1)[0]
        offset += length
        events.append(InotifyEvent(wd, mask, cookie, os.fsdecode(raw)))
    return events


# The process' own symbols, libc's among them: ctypes.util.find_library("c") runs `ldconfig -p` (a
# subprocess) at every import.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_init1.restype = ctypes.c_int
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_libc.inotify_add_watch.restype = ctypes.c_int


def _os_error(what: str, path: str | None = None) -> OSError:
    code = ctypes.get_errno()
    detail = f"{what}: {os.strerror(code)}"
    return OSError(code, detail) if path is None else OSError(code, detail, path)


@final
class Inotify:
    """An inotify instance (one non-blocking descriptor); close it, or use it as a context manager."""

    __slots__ = ("_fd",)

    def __init__(self) -> None:
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise _os_error("inotify_init1")
        self._fd: int = fd

    def fileno(self) -> int:
        return self._fd

    def add_watch(self, path: str | os.PathLike[str], mask: int) -> int:
        """Watch ``path`` for the events in ``mask``; returns the watch descriptor."""
        raw = os.fsencode(path)
        wd = _libc.inotify_add_watch(self._fd, raw, mask)
        if wd < 0:
            raise _os_error("inotify_add_watch", os.fsdecode(raw))
        return int(wd)

    def read(self) -> list[InotifyEvent]:
        """The events queued now; none when there are none (it never blocks)."""
        try:
            data = os.read(self._fd, _READ_SIZE)
        except BlockingIOError:
            return []
        return parse_events(data)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> Inotify:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class WatchLostError(OSError):
    """The watched directory was removed, moved or unmounted: the watch must be set up again."""


async def watch_files(
    directory: str | os.PathLike[str], names: Collection[str], changed: Callable[[], None]
) -> None:
    """Call ``changed()`` once the watch is set up, then after each batch of events in which one of
    ``names`` inside ``directory`` was closed after writing, moved in or out, or deleted; also when the
    kernel's event queue overflowed (something may have been missed). Runs until cancelled.

    Events of the directory's other files are not read as they come: after a read that held only those, the
    next one waits `SETTLE` s, so a program closing another file in a loop (a disk image beside the config)
    costs a few reads a second (the kernel merges an event with an unread copy of itself), and a change of
    interest made meanwhile is seen up to `SETTLE` s later.

    Raises:
        OSError: inotify is unavailable or the directory cannot be watched (``ENOENT`` when it is missing).
        WatchLostError: the directory went away while watched (after a last ``changed()``).
    """
    wanted = frozenset(names)
    with Inotify() as inotify:
        inotify.add_watch(directory, FILE_DONE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
        changed()  # watching from now on: whatever changed before is read by the wake-up this causes
        while True:
            await anyio.wait_readable(inotify.fileno())
            events = inotify.read()
            lost = any(event.mask & WATCH_LOST for event in events)
            if lost or any(event.mask & IN_Q_OVERFLOW or event.name in wanted for event in events):
                changed()  # a lost directory took its files with it: that is a change too
            elif events:  # only other files: let a storm of them queue (and merge) a while
                await anyio.sleep(SETTLE)
            if lost:
                raise WatchLostError(
                    errno.ENOENT, "the watched directory was removed or moved", os.fsdecode(directory)
                )


async def watch_writes(
    path: str | os.PathLike[str],
    changed: Callable[[], None],
    *,
    settle: float = SETTLE,
    longest: float = LONGEST,
) -> None:
    """Call ``changed()`` once the watch is set up, then once per burst of events in which ``path`` (a
    regular file or a device node: udev's "watch" option) was closed by a process that had it open for
    writing, written or not; also when the kernel's event queue overflowed. A burst ends ``settle`` to
    twice ``settle`` s after its last such close, or ``longest`` s after its first, as the uevents'
    (`burst_end`): a program opening the node for writing in a loop costs one wake-up a second, not one
    per close. Runs until cancelled.

    Only that node is watched: a write through another node of the same device (a partition's own node, a
    second loop device over the same file), or by a writer that has not closed yet, is not seen. A symlink
    is followed once, when the watch is set up.

    A node removed or replaced while another process still holds it open (a loop device over an image file
    renamed over) gives no ``IN_DELETE_SELF`` until its last close; its link count changing does
    (``IN_ATTRIB``), and then ``path`` naming another inode, or none, ends the watch as a removal does.

    Raises:
        OSError: inotify is unavailable or ``path`` cannot be watched (``ENOENT`` when it is missing).
        WatchLostError: ``path`` was removed, replaced or moved while watched, say a partition's node re-made
            when its table was read again (after a last ``changed()``): watch it again.
    """
    lost = False

    def take() -> bool:
        """Read the queued events: was the node closed after a write (or lost, or events dropped)?"""
        nonlocal lost
        events = inotify.read()
        lost = lost or any(event.mask & WATCH_LOST for event in events)
        if not lost and any(event.mask & IN_ATTRIB for event in events):
            lost = _identity(path) != watched
        return lost or any(event.mask & (IN_CLOSE_WRITE | IN_Q_OVERFLOW) for event in events)

    with Inotify() as inotify:
        before = _identity(path)
        inotify.add_watch(path, IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)
        watched = _identity(path)
        changed()  # watching from now on: whatever was written before is read by the wake-up this causes
        if watched != before:  # replaced meanwhile: which node is watched is unknown
            raise WatchLostError(errno.ENOENT, "the watched file was replaced", os.fsdecode(path))
        while True:
            await anyio.wait_readable(inotify.fileno())
            if not take():
                continue
            if not lost:  # a lost watch has no more events to wait for
                await burst_end(take, settle=settle, longest=longest)
            changed()
            if lost:
                raise WatchLostError(errno.ENOENT, "the watched file was removed or moved", os.fsdecode(path))


def _identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """The device and inode ``path`` names now (a symlink followed, as inotify does), None when nothing."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino
