"""What wakes the built-in controllers besides resource changes: inotify on files, kernel uevents of block
devices, process exits (pidfd). Plain async functions that call ``changed()``; the controllers wrap them in
`EventSource` values."""

from ._inotify import Inotify as Inotify
from ._inotify import InotifyEvent as InotifyEvent
from ._inotify import WatchLostError as WatchLostError
from ._inotify import parse_events as parse_events
from ._inotify import watch_files as watch_files
from ._inotify import watch_writes as watch_writes
from ._pidfd import watch_exits as watch_exits
from ._uevent import Uevent as Uevent
from ._uevent import UeventsLostError as UeventsLostError
from ._uevent import UeventSocket as UeventSocket
from ._uevent import UeventSource as UeventSource
from ._uevent import is_block_change as is_block_change
from ._uevent import parse_uevent as parse_uevent
from ._uevent import watch_uevent_source as watch_uevent_source
from ._uevent import watch_uevents as watch_uevents

__all__ = [
    "Inotify",
    "InotifyEvent",
    "Uevent",
    "UeventSocket",
    "UeventSource",
    "UeventsLostError",
    "WatchLostError",
    "is_block_change",
    "parse_events",
    "parse_uevent",
    "watch_exits",
    "watch_files",
    "watch_uevent_source",
    "watch_uevents",
    "watch_writes",
]
