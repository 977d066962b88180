"""Loop devices as sysfs shows them (read only: opening a device could trigger its autoclear)."""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, final

from ._errors import LoopError

SYS_BLOCK: Final = Path("/sys/block")
_LOOP_NAME = re.compile(r"loop(\d+)")
_DELETED = " (deleted)"


@final
@dataclass(frozen=True)
class LoopDevice:
    """An attached loop device.

    Attributes:
        path: the block device node, ``/dev/loopN``.
        number: N.
        backing_file: the attached file as the kernel names it (may end with `` (deleted)``).
        offset: where the device starts in the file, in bytes.
        size_limit: the device size limit in bytes (0: to the end of the file).
        size: the device size in bytes as the kernel sees it now.
        read_only: whether the device refuses writes.
        autoclear: whether the kernel detaches it when its last opener closes it.
    """

    path: str
    number: int
    backing_file: str
    offset: int
    size_limit: int
    size: int
    read_only: bool
    autoclear: bool

    @property
    def backing_file_deleted(self) -> bool:
        """Whether the backing file was deleted while attached."""
        return self.backing_file.endswith(_DELETED)

    @property
    def backing_name(self) -> str:
        """``backing_file`` without the `` (deleted)`` the kernel adds once the file's name is gone (also when
        a dead FUSE mount's entry for it was dropped: the file is the same, still attached)."""
        return self.backing_file.removesuffix(_DELETED)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="surrogateescape").rstrip("\n")


def read_loop_device(device: str | os.PathLike[str], *, sys_block: Path = SYS_BLOCK) -> LoopDevice | None:
    """The attachment of ``/dev/loopN`` (or ``loopN``), or None when it is not attached.

    Raises:
        LoopError: ``device`` does not name a loop device.
    """
    name = os.path.basename(os.fspath(device))
    match = _LOOP_NAME.fullmatch(name)
    if match is None:
        raise LoopError(22, f"{os.fspath(device)!r} is not a loop device (/dev/loopN)")
    base = sys_block / name
    try:
        backing = _read(base / "loop" / "backing_file")
        offset = int(_read(base / "loop" / "offset"))
        size_limit = int(_read(base / "loop" / "sizelimit"))
        autoclear = _read(base / "loop" / "autoclear") == "1"
        read_only = _read(base / "ro") == "1"
        size = int(_read(base / "size")) * 512
    except FileNotFoundError:
        return None  # not attached (no loop/ directory), or no such device
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.ENXIO):
            return None  # detached (by another process) while its attributes were read
        raise
    return LoopDevice(
        path=f"/dev/{name}",
        number=int(match.group(1)),
        backing_file=backing,
        offset=offset,
        size_limit=size_limit,
        size=size,
        read_only=read_only,
        autoclear=autoclear,
    )


def read_diskseq(device: str | os.PathLike[str], *, sys_block: Path = SYS_BLOCK) -> int | None:
    """The kernel's sequence number of ``/dev/loopN``'s current attachment (``diskseq``, Linux 5.15+: a new
    one for every attach, never reused until reboot), or None where the kernel has none.

    It tells one attachment from the next on the same number, which a file's name cannot once its mount is
    gone (sysfs then names it relative to that mount's root)."""
    name = os.path.basename(os.fspath(device))
    if _LOOP_NAME.fullmatch(name) is None:
        raise LoopError(22, f"{os.fspath(device)!r} is not a loop device (/dev/loopN)")
    try:
        return int(_read(sys_block / name / "diskseq"))
    except (OSError, ValueError):
        return None


def list_loop_devices(*, sys_block: Path = SYS_BLOCK) -> list[LoopDevice]:
    """All attached loop devices, by number."""
    found: list[LoopDevice] = []
    try:
        names = os.listdir(sys_block)
    except FileNotFoundError:
        return found
    for name in names:
        if _LOOP_NAME.fullmatch(name) and (device := read_loop_device(name, sys_block=sys_block)) is not None:
            found.append(device)
    return sorted(found, key=lambda device: device.number)


def _same_file(backing: str, wanted: str) -> bool:
    if backing == wanted:
        return True
    try:
        return os.path.samefile(backing, wanted)
    except OSError:
        return False


def find_attachments(
    path: str | os.PathLike[str],
    *,
    offset: int | None = None,
    size_limit: int | None = None,
    sys_block: Path = SYS_BLOCK,
) -> list[LoopDevice]:
    """Loop devices attached to the file ``path`` (optionally only at ``offset`` / ``size_limit``)."""
    wanted = os.path.realpath(path)
    return [
        device
        for device in list_loop_devices(sys_block=sys_block)
        if not device.backing_file_deleted
        and _same_file(device.backing_file, wanted)
        and (offset is None or device.offset == offset)
        and (size_limit is None or device.size_limit == size_limit)
    ]
