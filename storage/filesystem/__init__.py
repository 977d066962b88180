"""Filesystems and mounts: mkfs (xfs, ext4, swap) with labels, grow, mount/umount, mount-table checks, swapon.

Every function here blocks (they run external tools): async callers run them in worker threads.
"""

from ._errors import FilesystemError as FilesystemError
from ._errors import MountConflictError as MountConflictError
from ._errors import ToolError as ToolError
from ._errors import ToolMissingError as ToolMissingError
from ._errors import UnsupportedFilesystemError as UnsupportedFilesystemError
from ._grow import FilesystemGrowth as FilesystemGrowth
from ._grow import filesystem_size as filesystem_size
from ._grow import grow_filesystem as grow_filesystem
from ._grow import grow_to_device as grow_to_device
from ._mkfs import FilesystemType as FilesystemType
from ._mkfs import make_filesystem as make_filesystem
from ._mount import MountInfo as MountInfo
from ._mount import bind_mount_onto_itself as bind_mount_onto_itself
from ._mount import find_mount as find_mount
from ._mount import is_mounted as is_mounted
from ._mount import mount as mount
from ._mount import mounts_of_device as mounts_of_device
from ._mount import parse_mountinfo as parse_mountinfo
from ._mount import read_mounts as read_mounts
from ._mount import remount as remount
from ._mount import umount as umount
from ._swap import PROC_SWAPS as PROC_SWAPS
from ._swap import SwapEntry as SwapEntry
from ._swap import active_swap as active_swap
from ._swap import parse_swaps as parse_swaps
from ._swap import read_swaps as read_swaps
from ._swap import swap_active as swap_active
from ._swap import swap_off as swap_off
from ._swap import swap_on as swap_on

__all__ = [
    "PROC_SWAPS",
    "FilesystemError",
    "FilesystemGrowth",
    "FilesystemType",
    "MountConflictError",
    "MountInfo",
    "SwapEntry",
    "ToolError",
    "ToolMissingError",
    "UnsupportedFilesystemError",
    "active_swap",
    "bind_mount_onto_itself",
    "filesystem_size",
    "find_mount",
    "grow_filesystem",
    "grow_to_device",
    "is_mounted",
    "make_filesystem",
    "mount",
    "mounts_of_device",
    "parse_mountinfo",
    "parse_swaps",
    "read_mounts",
    "read_swaps",
    "remount",
    "swap_active",
    "swap_off",
    "swap_on",
    "umount",
]
