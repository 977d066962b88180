"""Small process and mount helpers for the FUSE backend: PID checks, unmount, exclusive-open probes."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import time
from typing import Final

MNT_DETACH: Final = 2

# The process' own symbols, libc's among them: ctypes.util.find_library("c") runs `ldconfig -p` (a
# subprocess) at every import, and `volumed run` imports this module before its first volume.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int


def umount(target: str, *, lazy: bool = False) -> int:
    """umount2(2) ``target``; return 0 or the errno (EINVAL: not a mount point, EBUSY: in use)."""
    if _libc.umount2(os.fsencode(target), MNT_DETACH if lazy else 0) == 0:
        return 0
    return ctypes.get_errno()


def is_mount_point(path: str) -> bool:
    """Whether ``path`` is a mount point (by /proc/self/mountinfo, which works even on a dead FUSE mount)."""
    real = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as table:
            for line in table:
                fields = line.split(" ")
                if len(fields) > 4 and _unescape(fields[4]) == real:
                    return True
    except FileNotFoundError:
        return False
    return False


def mounts_of_device(device: str) -> list[str]:
    """The mount points of the filesystems mounted from block device ``device`` (by its device number),
    deepest first."""
    try:
        number = os.stat(device).st_rdev
    except OSError:
        return []
    wanted = f"{os.major(number)}:{os.minor(number)}"
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as table:
            for line in table:
                fields = line.split(" ")
                if len(fields) > 4 and fields[2] == wanted:
                    found.append(_unescape(fields[4]))
    except FileNotFoundError:
        return []
    return sorted(found, key=len, reverse=True)


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def process_cmdline(pid: int) -> list[str] | None:
    """The argv of a live process, or None when there is none (zombies count as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            state = stat_file.read().rsplit(b")", 1)[1].split()[0]
        if state in (b"Z", b"X"):
            return None
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return [part.decode(errors="replace") for part in cmdline.read().split(b"\0") if part]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def stop_process(pid: int, *, is_ours: list[str], timeout: float = 5.0) -> None:
    """Wait for ``pid`` to exit, then SIGTERM, then SIGKILL — only while its argv still contains ``is_ours``.

    The argv check keeps a recycled PID of some other process from being signalled.
    """

    def ours() -> bool:
        argv = process_cmdline(pid)
        return argv is not None and all(marker in argv for marker in is_ours)

    for signal_number in (None, signal.SIGTERM, signal.SIGKILL):
        if signal_number is not None and ours():
            try:
                os.kill(pid, signal_number)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not ours():
                _reap(pid)
                return
            _reap(pid)
            time.sleep(0.02)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def in_use(device: str) -> bool:
    """Whether a block device is held by someone (mounted, or opened exclusively): O_EXCL open fails."""
    try:
        descriptor = os.open(device, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
    except OSError as exc:
        return exc.errno == errno.EBUSY
    os.close(descriptor)
    return False
