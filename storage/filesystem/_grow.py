"""Growing a filesystem to fill its (already enlarged) block device, mounted or not, as Talos does."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Final, final

from volumed.storage.blockdev import device_size

from ._errors import FilesystemError, ToolError, UnsupportedFilesystemError
from ._mkfs import FilesystemType
from ._mount import mount, mounts_of_device, umount
from ._run import run_tool

_XFS_DATA: Final = re.compile(r"^data\s*=\s*bsize=(\d+)\s+blocks=(\d+)", re.MULTILINE)
_EXT_FIELD: Final = re.compile(r"^(Block count|Block size):\s*(\d+)\s*$", re.MULTILINE)
#: A filesystem within this many bytes of its device's size fills it (mkfs.xfs and mkfs.ext4 fill theirs).
FILLED_SLACK: Final = 1024 * 1024
# e2fsck exit status: 0 clean, 1 errors fixed; anything else leaves the filesystem unfit to resize.
_E2FSCK_OK: Final = (0, 1)


@final
@dataclass(frozen=True)
class FilesystemGrowth:
    """A filesystem's data size (bytes) before and after `grow_to_device`."""

    fstype: str
    old_size: int
    new_size: int

    @property
    def grew(self) -> bool:
        """Whether the filesystem is larger now."""
        return self.new_size > self.old_size


def filesystem_size(device: str | os.PathLike[str], fstype: str) -> int:
    """The data size in bytes the filesystem on ``device`` (or mounted at it) says it has (blocking).

    xfs: ``xfs_info`` (data blocks x block size); ext4: ``dumpe2fs -h`` (block count x block size).

    Raises:
        FilesystemError: the tool failed or its output has no size.
    """
    path = os.fspath(device)
    if fstype == "xfs":
        found = _XFS_DATA.search(run_tool(["xfs_info", path]))
        if found is None:
            raise FilesystemError(f"xfs_info {path}: no data section in its output")
        return int(found.group(1)) * int(found.group(2))
    if fstype == "ext4":
        fields = dict(_EXT_FIELD.findall(run_tool(["dumpe2fs", "-h", path])))
        if len(fields) != 2:
            raise FilesystemError(f"dumpe2fs -h {path}: no block count and size in its output")
        return int(fields["Block count"]) * int(fields["Block size"])
    raise UnsupportedFilesystemError(f"growing {fstype!r} is not supported (xfs and ext4 are)")


def grow_filesystem(device: str | os.PathLike[str], fstype: str, *, mountpoint: str | None = None) -> None:
    """Grow a filesystem to fill its (already enlarged) device (blocking).

    xfs grows only while mounted (``xfs_growfs -d MOUNTPOINT``); ext4 grows with ``resize2fs DEVICE``,
    best unmounted (online ext4 resize needs kernel support that this project's CI kernel refuses with
    "Permission denied"); swap cannot be grown.
    """
    kind = next((t for t in FilesystemType if t.value == fstype), None)
    if kind is FilesystemType.XFS:
        if mountpoint is None:
            raise UnsupportedFilesystemError("xfs can only be grown while mounted: pass the mount point")
        run_tool(["xfs_growfs", "-d", mountpoint])
    elif kind is FilesystemType.EXT4:
        run_tool(["resize2fs", os.fspath(device)])
    else:
        raise UnsupportedFilesystemError(f"growing {fstype!r} is not supported (xfs and ext4 are)")


def grow_to_device(device: str | os.PathLike[str], fstype: str) -> FilesystemGrowth:
    """Grow the ``fstype`` filesystem on block device ``device`` to the device's size (blocking).

    xfs grows only while mounted: at its mount point when it is mounted, else mounted on a temporary folder
    for ``xfs_growfs -d`` and unmounted again (Talos' way). ext4: ``e2fsck -f -p`` then ``resize2fs`` on an
    unmounted device (resize2fs refuses a filesystem not checked since its last mount), ``resize2fs`` alone
    online. A filesystem within ``FILLED_SLACK`` of its device's size is left as it is, no tool run; one
    that is smaller (a grow cut short, a device that grew) is grown by the next call.

    Raises:
        UnsupportedFilesystemError: not xfs or ext4 (swap is made anew, never grown).
        FilesystemError: a tool failed; the message names the device and the tool's stderr.
    """
    path = os.fspath(device)
    if fstype not in ("xfs", "ext4"):
        raise UnsupportedFilesystemError(f"growing {fstype!r} is not supported (xfs and ext4 are)")
    try:
        old = filesystem_size(path, fstype)
        if device_size(path) - old < FILLED_SLACK:
            # Nothing to grow: no tool runs. (ext4 got e2fsck -f at every start, and one that needs a manual
            # fsck but mounts fine failed its volume although it had nothing to grow.)
            return FilesystemGrowth(fstype, old, old)
        mounted = [m.target for m in mounts_of_device(path)]
        if fstype == "xfs" and not mounted:
            _grow_xfs_unmounted(path)
        else:
            if not mounted:
                _check_ext4(path)
            grow_filesystem(path, fstype, mountpoint=mounted[0] if mounted else None)
        new = filesystem_size(path, fstype)
    except FilesystemError as error:
        raise FilesystemError(f"cannot grow the {fstype} filesystem on {path}: {error}") from error
    return FilesystemGrowth(fstype, old, new)


def _grow_xfs_unmounted(device: str) -> None:
    target = tempfile.mkdtemp(prefix="volumed-growfs-")
    try:
        mount(device, target, fstype="xfs")
        try:
            grow_filesystem(device, "xfs", mountpoint=target)
        finally:
            umount(target)
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(target)


def _check_ext4(device: str) -> None:
    try:
        run_tool(["e2fsck", "-f", "-p", device])
    except ToolError as error:
        if error.returncode not in _E2FSCK_OK:
            raise
