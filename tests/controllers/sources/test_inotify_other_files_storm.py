"""watch_files reads a storm of closes of other files in the watched directory (a disk image beside the
config, opened for writing in a loop) a few times a second, not as fast as they come: the ConfigLoader's
watch read 4300 events a second there, a fifth of a CPU (found while measuring review21 F4)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread

from tests.controllers.sources.test_inotify_writes import Woken
from volumed.controllers.sources._burst import SETTLE
from volumed.controllers.sources._inotify import Inotify, InotifyEvent, watch_files

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

CLOSES: Final = 20_000


def storm(path: Path) -> float:
    """Open ``path`` for writing and close it, CLOSES times, in a thread beside the watcher; the seconds."""
    started = time.monotonic()
    for _ in range(CLOSES):
        os.close(os.open(path, os.O_RDWR))
    return time.monotonic() - started


async def test_closes_of_other_files_are_read_a_few_times_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    read = Inotify.read

    def counted(self: Inotify) -> list[InotifyEvent]:
        events = read(self)
        reads.append(len(events))
        return events

    monkeypatch.setattr(Inotify, "read", counted)
    other = tmp_path / "node.img"
    other.write_bytes(b"\0" * 4096)
    woken = Woken()
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch_files, tmp_path, ["config.yaml"], woken)
        await woken.until(1)  # watching
        seconds = await anyio.to_thread.run_sync(storm, other)
        (tmp_path / "config.yaml").write_text("after the storm\n")
        await woken.until(2)  # a file of interest is still seen
        tg.cancel_scope.cancel()
    assert woken.count == 2
    assert len(reads) <= seconds / SETTLE + 3, (seconds, len(reads), sum(reads))
