"""Mounting and unmounting through mount(8)/umount(8), and reading the kernel's mount table."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import re
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final

from ._errors import MountConflictError, ToolError
from ._run import run_tool

if TYPE_CHECKING:
    from collections.abc import Sequence

_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


@final
@dataclass(frozen=True)
class MountInfo:
    """One line of ``/proc/self/mountinfo``."""

    mount_id: int
    major: int
    minor: int
    root: str
    target: str
    options: tuple[str, ...]
    fstype: str
    source: str
    super_options: tuple[str, ...]


def parse_mountinfo(text: str) -> list[MountInfo]:
    """Parse the contents of a mountinfo file (see proc(5))."""
    mounts: list[MountInfo] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        left, _, right = line.partition(" - ")
        f = left.split()
        r = right.split()
        major, minor = f[2].split(":")
        mounts.append(
            MountInfo(
                mount_id=int(f[0]),
                major=int(major),
                minor=int(minor),
                root=_unescape(f[3]),
                target=_unescape(f[4]),
                options=tuple(f[5].split(",")),
                fstype=r[0],
                source=_unescape(r[1]) if len(r) > 1 else "",
                super_options=tuple(r[2].split(",")) if len(r) > 2 else (),
            )
        )
    return mounts


def read_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[MountInfo]:
    """The mount table of this process's namespace, in mount order."""
    with open(mountinfo, encoding="utf-8") as f:
        return parse_mountinfo(f.read())


def find_mount(
    target: str | os.PathLike[str], *, mountinfo: str = "/proc/self/mountinfo"
) -> MountInfo | None:
    """The topmost mount at ``target`` (path normalised, symlinks resolved), or ``None``."""
    want = os.path.realpath(target)
    found = None
    for m in read_mounts(mountinfo):
        if m.target == want:
            found = m
    return found


def is_mounted(target: str | os.PathLike[str]) -> bool:
    """Whether something is mounted exactly at ``target``."""
    return find_mount(target) is not None


def mounts_of_device(device: str | os.PathLike[str]) -> list[MountInfo]:
    """Every mount whose source is the block device ``device`` (matched by device number)."""
    st = os.stat(device)
    if not stat.S_ISBLK(st.st_mode):
        return []
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    return [m for m in read_mounts() if (m.major, m.minor) == (major, minor)]


def _same_source(mounted: MountInfo, source: str) -> bool:
    try:
        st = os.stat(source)
    except OSError:
        return False
    if stat.S_ISBLK(st.st_mode):
        return (mounted.major, mounted.minor) == (os.major(st.st_rdev), os.minor(st.st_rdev))
    return os.path.realpath(source) == os.path.realpath(mounted.source)


def mount(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    fstype: str | None = None,
    options: Sequence[str] = (),
    read_only: bool = False,
) -> bool:
    """Mount ``source`` on ``target`` (blocking); idempotent.

    Returns ``True`` when it mounted, ``False`` when ``source`` was already mounted there.

    Raises:
        MountConflictError: something else is mounted at ``target``.
        ToolError: mount(8) failed (its stderr is in the message).
    """
    src, dst = os.fspath(source), os.fspath(target)
    current = find_mount(dst)
    if current is not None:
        if _same_source(current, src):
            return False
        raise MountConflictError(
            f"{dst} is already a mount point of {current.source} ({current.fstype}), not {src}"
        )
    opts = list(options) + (["ro"] if read_only else [])
    argv = (
        ["mount"] + (["-t", fstype] if fstype else []) + (["-o", ",".join(opts)] if opts else []) + [src, dst]
    )
    run_tool(argv)
    return True


_MS_BIND: Final = 4096


def bind_mount_onto_itself(directory_fd: int) -> None:
    """Bind mount the directory open as ``directory_fd`` onto itself (blocking).

    Through the descriptor's ``/proc/self/fd`` link, which the kernel resolves to the opened directory itself:
    a path would be walked again, through whatever symbolic link was put in it since it was opened.

    Raises:
        ToolError: mount(2) refused (its errno in the message).
    """
    where = f"/proc/self/fd/{directory_fd}"
    if _libc().mount(where.encode(), where.encode(), None, _MS_BIND, None) != 0:
        code = ctypes.get_errno()
        path = os.readlink(where)
        raise ToolError(["mount", "--bind", path, path], code, f"mount(2): {os.strerror(code)}")


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p)
    return libc


def remount(target: str | os.PathLike[str], *, read_only: bool) -> None:
    """Make the mount at ``target`` read-only or read-write in place (blocking); it stays mounted. Read-only
    fails while a file there is open for writing, read-write on a read-only device.

    Raises:
        ToolError: mount(8) failed (its stderr is in the message).
    """
    run_tool(["mount", "-o", "remount," + ("ro" if read_only else "rw"), os.fspath(target)])


def umount(target: str | os.PathLike[str], *, lazy: bool = False) -> bool:
    """Unmount ``target`` (blocking). Returns ``False`` when nothing was mounted there.

    Raises:
        ToolError: umount(8) failed, e.g. "target is busy".
    """
    dst = os.fspath(target)
    if find_mount(dst) is None:
        return False
    run_tool(["umount"] + (["--lazy"] if lazy else []) + [dst])
    return True
