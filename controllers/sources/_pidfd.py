"""Process exits as wake-ups: a pidfd (Linux 5.3) becomes readable once its process has exited, child or not.

For the FUSE server a volume's activation runs in: killed, it leaves every volume it served looking ready
while their I/O fails (review23 F1); nothing else would wake the controller that reports them.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Final

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from volumed.runtime.controller import Wake

CHECK_INTERVAL: Final = 2.0
"""How often the processes to watch are asked for again (new ones), and a process whose pidfd could not be
opened (no pidfd support) is looked for in /proc: the fallback when no pidfd tells."""


async def watch_exits(
    processes: Callable[[], Iterable[int]], wake: Wake, *, interval: float = CHECK_INTERVAL
) -> None:
    """Call ``wake()`` when any of ``processes()`` (called in a worker thread every ``interval`` seconds)
    exits, once per exit; and once when watching starts, for what exited before."""
    watched: dict[int, int] = {}  # pid -> its pidfd, or -1 where none could be had
    gone: set[int] = set()  # exits already reported, while the pid is still listed
    woken = False
    try:
        while True:
            listed = set(await anyio.to_thread.run_sync(lambda: set(processes())))
            exited = _follow(watched, gone, listed)
            if exited or not woken:
                woken = True
                wake()
            for pid in await _exits(watched, interval):
                _forget(watched, pid)
                gone.add(pid)
                wake()
    finally:
        for pid in list(watched):
            _forget(watched, pid)


def _follow(watched: dict[int, int], gone: set[int], listed: set[int]) -> bool:
    """Watch the listed processes not yet watched; whether one of them has exited already."""
    gone &= listed
    for pid in set(watched) - listed:
        _forget(watched, pid)
    exited = False
    for pid in listed - set(watched) - gone:
        try:
            watched[pid] = os.pidfd_open(pid)
        except ProcessLookupError:
            gone.add(pid)
            exited = True
        except OSError:  # no pidfd here (ENOSYS) or out of descriptors: /proc at each interval
            watched[pid] = -1
    for pid in [pid for pid, fd in watched.items() if fd == -1 and not os.path.exists(f"/proc/{pid}")]:
        _forget(watched, pid)
        gone.add(pid)
        exited = True
    return exited


async def _exits(watched: dict[int, int], interval: float) -> list[int]:
    """The watched processes that exit within ``interval`` seconds (empty when none did)."""
    exited: list[int] = []
    with anyio.move_on_after(interval):
        async with anyio.create_task_group() as group:

            async def one(pid: int, fd: int) -> None:
                await anyio.wait_readable(fd)
                exited.append(pid)
                group.cancel_scope.cancel()

            for pid, fd in watched.items():
                if fd != -1:
                    group.start_soon(one, pid, fd)
            await anyio.sleep(interval)
    return exited


def _forget(watched: dict[int, int], pid: int) -> None:
    fd = watched.pop(pid)
    if fd != -1:
        with contextlib.suppress(OSError):
            os.close(fd)
