"""watch_writes: one file (or device node) closed after being opened for writing, as udev's "watch"."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import anyio
import pytest

from volumed.controllers.sources import WatchLostError
from volumed.controllers.sources._inotify import watch_writes

if TYPE_CHECKING:
    from pathlib import Path

SOON = 5.0


class Woken:
    """Counts ``changed()`` calls and lets the test wait for the next one."""

    def __init__(self) -> None:
        self.count = 0
        self._event = anyio.Event()

    def __call__(self) -> None:
        self.count += 1
        self._event.set()
        self._event = anyio.Event()

    async def until(self, count: int) -> None:
        with anyio.fail_after(SOON):
            while self.count < count:
                await self._event.wait()


async def test_a_close_after_writing_wakes_and_reading_does_not(tmp_path: Path) -> None:
    path = tmp_path / "meta.img"
    path.write_bytes(b"\0" * 4096)
    woken = Woken()
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch_writes, path, woken)
        await woken.until(1)  # watching
        assert path.read_bytes()  # opened for reading: no event
        fd = os.open(path, os.O_RDWR)
        os.pwrite(fd, b"tag", 0)
        await anyio.wait_all_tasks_blocked()
        assert woken.count == 1  # written, not closed yet: no event
        os.close(fd)
        await woken.until(2)
        fd = os.open(path, os.O_WRONLY)  # opened for writing and closed without a write counts too
        os.close(fd)
        await woken.until(3)
        tg.cancel_scope.cancel()


async def test_a_removed_file_ends_the_watch_with_a_last_wake(tmp_path: Path) -> None:
    path = tmp_path / "meta.img"
    path.write_bytes(b"\0" * 4096)
    woken = Woken()

    async def remove_once_watched() -> None:
        await woken.until(1)
        path.unlink()  # as devtmpfs removes a partition's node when its table is read again

    async with anyio.create_task_group() as tg:
        tg.start_soon(remove_once_watched)
        with pytest.raises(WatchLostError):
            await watch_writes(path, woken)
    assert woken.count == 2


async def test_a_missing_file_cannot_be_watched(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await watch_writes(tmp_path / "missing", lambda: None)
