"""Which bytes a path names: an image file, a block device, or a loop device counted as the file it maps.

A loop device is identified by the device and inode of its open backing file as the kernel reports them
(LOOP_GET_STATUS64), never by the path sysfs shows: that path may be deleted, belong to another mount
namespace, or name another file by now. When the kernel cannot tell, the caller is refused, not guessed for.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ._errors import BlockDeviceError

_SYS_DEV_BLOCK: Final = Path("/sys/dev/block")


@dataclass(frozen=True)
class DataIdentity:
    """``key``: the file (``file-<dev>:<inode>``) or whole disk (``block-<major>:<minor>``) holding the bytes;
    ``offset``: where byte 0 of the path is in it (a partition's start, a loop device's offset)."""

    key: str
    offset: int


def data_identity(path: str | os.PathLike[str]) -> DataIdentity:
    """The :class:`DataIdentity` of ``path`` (symlinks followed).

    Raises:
        BlockDeviceError: ``path`` cannot be looked at, or it is a loop device whose file cannot be told.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise BlockDeviceError(exc.errno, f"cannot look at {path}: {exc.strerror}") from None
    if not stat.S_ISBLK(st.st_mode):
        return DataIdentity(f"file-{st.st_dev}:{st.st_ino}", 0)
    device = (_SYS_DEV_BLOCK / f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}").resolve()
    start = 0
    disk = device
    if (device / "partition").exists():
        disk = device.parent
        start = int(_read_sysfs(device / "start") or 0) * 512
    if (disk / "loop").exists() or os.major(st.st_rdev) == 7:
        from volumed.storage.loop import LoopError, loop_backing_of

        try:
            backing = loop_backing_of(path)
        except LoopError as exc:
            raise BlockDeviceError(
                exc.errno or 0, f"cannot tell which file loop device {path} maps: {exc}"
            ) from None
        if backing is not None:
            return DataIdentity(f"file-{backing.device}:{backing.inode}", backing.offset + start)
    number = _read_sysfs(disk / "dev") or f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    return DataIdentity(f"block-{number}", start)


def _read_sysfs(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


__all__ = ["DataIdentity", "data_identity"]
