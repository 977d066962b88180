"""One owner per disk: an exclusive ``flock`` on a lock file per disk, and the refusal naming its holder.

The lock is not taken on the disk itself: systemd-udevd takes a shared flock on a whole disk before it handles
an event for it, and holds off (then drops) events while someone holds it exclusively. Talos does that only
while it changes a disk; a daemon that owns a disk for as long as it runs would starve udev of the change
events of every partition it writes. So each disk has a lock file under ``/run/volumed/disks`` instead, named
by which disk it is (the whole disk's device number; for an image file, or a loop device over one, the file's
device and inode), and holding the pid and the name of its owner.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from pathlib import Path
from typing import Final, final

from ._errors import BlockDeviceError
from ._identity import data_identity

DEFAULT_LOCK_DIR: Final = Path("/run/volumed/disks")
"""Not under the world-writable /run/lock, where any user could make the directory first, and own it."""


class DiskBusyError(BlockDeviceError):
    """The disk (or directory) is owned by another process that holds its lock; ``holder`` describes it.

    Not raised for a disk that is merely open or mounted (that is EBUSY from ``O_EXCL``, another check).
    """

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(errno.EBUSY, message)
        self.holder = holder


@final
class LockFile:
    """An exclusive ``flock`` held on ``path`` until ``release()`` (or the process ends, even by SIGKILL).

    The file holds ``<pid> <owner>`` of the holder, so a refused process can name it. The descriptor is
    close-on-exec: no child (mkfs, a FUSE server) inherits the lock and keeps it after this process ends.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def __repr__(self) -> str:
        return f"LockFile({str(self.path)!r}, held={self._fd is not None})"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def hold_lock_file(path: str | os.PathLike[str], *, what: str, owner: str) -> LockFile:
    """Take the lock of ``path`` (created 0600 if missing) for ``owner`` (e.g. ``volumed run``).

    Raises:
        DiskBusyError: another process holds it; the message names ``what`` and the holder.
        BlockDeviceError: the lock file cannot be created or opened, or another user owns it or may write it.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except OSError as exc:
        raise BlockDeviceError(exc.errno, f"cannot open the lock file {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise BlockDeviceError(
                errno.EPERM,
                f"the lock file {path} is not a file of this user that only it may write to: "
                "another user may hold it",
            )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(fd)
            raise DiskBusyError(f"{what} is in use by {holder}", holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {owner}\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return LockFile(path, fd)


def lock_holder(path: str | os.PathLike[str]) -> str | None:
    """Who holds the lock of ``path`` (``volumed run (pid 1234)``), or None when no one does."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _describe_holder(fd)
    finally:
        os.close(fd)
    return None


_KNOWN_OWNERS: Final = frozenset({"volumed run"})
"""The only owner names printed as read: the file may have been written by anyone, to deceive the reader."""


def _describe_holder(fd: int) -> str:
    """``volumed run (pid N)``: the pid the kernel says holds the lock (/proc/locks), the name from the file
    only when the file names that pid (it is written just after the lock is taken: in the gap, or when someone
    else wrote it, it may name a process long gone) and is a name we write."""
    holders = _flock_holders(fd)
    pid, owner = _read_file_holder(fd)
    if len(holders) == 1:
        (locker,) = holders
        name = owner if pid == locker and owner in _KNOWN_OWNERS else "another process"
        return f"{name} (pid {locker})"
    return "another process"


def _flock_holders(fd: int) -> set[int]:
    """The pids holding an exclusive flock on the file open as ``fd``, from /proc/locks."""
    st = os.fstat(fd)
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pids: set[int] = set()
    with contextlib.suppress(OSError), open("/proc/locks", encoding="ascii", errors="replace") as locks:
        for line in locks:
            fields = line.split()
            if "->" in fields:
                continue  # a waiter, not a holder
            if len(fields) >= 6 and fields[1] == "FLOCK" and fields[3] == "WRITE" and fields[5] == wanted:
                with contextlib.suppress(ValueError):
                    pids.add(int(fields[4]))
    return pids


def _read_file_holder(fd: int) -> tuple[int | None, str]:
    with contextlib.suppress(OSError, UnicodeDecodeError):
        pid, _, owner = os.pread(fd, 256, 0).decode("ascii").strip().partition(" ")
        if pid.isdigit() and len(pid) < 12:
            return int(pid), owner
    return None, ""


def disk_key(path: str | os.PathLike[str]) -> str:
    """Which disk ``path`` is, as a file name: ``block-8:0`` for a block device (its whole disk), and
    ``file-<dev>:<inode>`` for an image file or a loop device over one (hard links, bind mounts, a deleted
    name and another mount namespace's path all name the same disk: the kernel's open file decides).

    Raises:
        BlockDeviceError: ``path`` cannot be looked at, or which file a loop device maps cannot be told.
    """
    return data_identity(path).key


def disk_lock_path(path: str | os.PathLike[str], *, lock_dir: Path = DEFAULT_LOCK_DIR) -> Path:
    """The lock file of the disk ``path`` is (or is a partition of)."""
    return lock_dir / f"{disk_key(path)}.lock"


def lock_disk(
    path: str | os.PathLike[str], *, owner: str = "volumed run", lock_dir: Path = DEFAULT_LOCK_DIR
) -> LockFile:
    """Own the disk ``path`` is on until released: the lock of :func:`disk_lock_path`.

    Raises:
        DiskBusyError: another process owns it (``disk PATH is in use by volumed run (pid N)``).
        BlockDeviceError: ``path`` or the lock directory cannot be used.
    """
    lock_path = disk_lock_path(path, lock_dir=lock_dir)
    try:
        os.makedirs(lock_dir, mode=0o700, exist_ok=True)
        st = os.lstat(lock_dir)
    except OSError as exc:
        raise BlockDeviceError(
            exc.errno, f"cannot make the lock directory {lock_dir}: {exc.strerror}"
        ) from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise BlockDeviceError(
            errno.EPERM,
            f"the lock directory {lock_dir} is not a directory of this user that only it may write to: "
            "another user may hold any lock in it",
        )
    return hold_lock_file(lock_path, what=f"disk {path}", owner=owner)


def disk_owner(path: str | os.PathLike[str], *, lock_dir: Path = DEFAULT_LOCK_DIR) -> str | None:
    """Who owns the disk of ``path`` (``volumed run (pid 1234)``), or None (also when it cannot be told)."""
    try:
        return lock_holder(disk_lock_path(path, lock_dir=lock_dir))
    except OSError:
        return None


__all__ = [
    "DEFAULT_LOCK_DIR",
    "DiskBusyError",
    "LockFile",
    "disk_key",
    "disk_lock_path",
    "disk_owner",
    "hold_lock_file",
    "lock_disk",
    "lock_holder",
]
