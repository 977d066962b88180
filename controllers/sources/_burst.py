"""The end of a burst of events on a descriptor: what makes a storm of events cost one wake-up a second.

Shared by the uevent and the inotify sources: a disk with many partitions, or a program opening META's node
for writing in a loop, each wake a controller once per burst rather than once per event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable

SETTLE: Final = 0.1
"""Seconds without another accepted event that end a burst."""
LONGEST: Final = 1.0
"""Seconds after a burst's first event by which it ends even while events go on."""


async def burst_end(take: Callable[[], bool], *, settle: float, longest: float) -> None:
    """Return when the burst whose first event was just taken is over: once ``take`` (which reads what is
    queued) finds that nothing it accepts came in the last ``settle`` s, or ``longest`` s after the first
    event. So the wake-up comes ``settle`` to twice ``settle`` s after the last event.

    It sleeps in between instead of reading each event as it comes: a storm's events wait in the kernel's
    queue (inotify merges an event with an unread copy of itself; a uevent socket that overflows reports
    it), so a storm costs one read every ``settle`` s, not one per event.
    """
    deadline = anyio.current_time() + longest
    while (left := deadline - anyio.current_time()) > 0:
        await anyio.sleep(min(settle, left))
        if not take():
            return
