"""watch_writes wakes once per burst of closes, as the uevents do: a program that opened META's node for
writing and closed it in a loop woke MetaStore 4644 times in 10 s, 88 % of a CPU (review21 F4)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

import anyio

from tests.controllers.sources.test_inotify_writes import Woken
from volumed.controllers.sources._inotify import watch_writes

if TYPE_CHECKING:
    from pathlib import Path

SETTLE: Final = 0.5  # far longer than the burst below takes, even on a loaded machine
LONGEST: Final = 5.0
CLOSES: Final = 50


async def test_a_burst_of_closes_after_writing_wakes_once(tmp_path: Path) -> None:
    path = tmp_path / "meta.img"
    path.write_bytes(b"\0" * 4096)
    woken = Woken()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: watch_writes(path, woken, settle=SETTLE, longest=LONGEST))
        await woken.until(1)  # watching
        for _ in range(CLOSES):
            os.close(os.open(path, os.O_RDWR))
            await anyio.wait_all_tasks_blocked()  # the watcher reads each close on its own
        await woken.until(2)
        await anyio.sleep(SETTLE)  # (a second wake-up would come within a settle time of the first)
        assert woken.count == 2
        os.close(os.open(path, os.O_WRONLY))  # a later close: a burst of its own
        await woken.until(3)
        tg.cancel_scope.cancel()
