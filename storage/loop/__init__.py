"""Loop devices: attach a file (or a byte range of it) as a block device, detach, resize, find existing
attachments.

Uses the kernel's loop-control and LOOP_CONFIGURE ioctls directly (no losetup), and sysfs to list
attachments. Every function blocks briefly: async callers run them in worker threads.
"""

from ._attach import attach as attach
from ._attach import attached as attached
from ._attach import detach as detach
from ._errors import LoopError as LoopError
from ._resize import set_size_limit as set_size_limit
from ._status import LoopBacking as LoopBacking
from ._status import LoopPin as LoopPin
from ._status import UnreachableBacking as UnreachableBacking
from ._status import loop_backing as loop_backing
from ._status import loop_backing_of as loop_backing_of
from ._status import pinned_backing as pinned_backing
from ._sysfs import LoopDevice as LoopDevice
from ._sysfs import find_attachments as find_attachments
from ._sysfs import list_loop_devices as list_loop_devices
from ._sysfs import read_diskseq as read_diskseq
from ._sysfs import read_loop_device as read_loop_device

__all__ = [
    "LoopBacking",
    "LoopDevice",
    "LoopError",
    "LoopPin",
    "UnreachableBacking",
    "attach",
    "attached",
    "detach",
    "find_attachments",
    "list_loop_devices",
    "loop_backing",
    "loop_backing_of",
    "pinned_backing",
    "read_diskseq",
    "read_loop_device",
    "set_size_limit",
]
