"""inotify through libc: event parsing, which events count as a finished file, a lost directory."""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

import anyio
import pytest

from volumed.controllers.sources import Inotify, InotifyEvent, WatchLostError, parse_events, watch_files
from volumed.controllers.sources._inotify import (
    FILE_DONE,
    IN_CLOSE_WRITE,
    IN_DELETE,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
)

if TYPE_CHECKING:
    from pathlib import Path


def record(wd: int, mask: int, cookie: int, name: bytes, padded: int) -> bytes:
    return struct.pack("=iIII", wd, mask, cookie, padded) + name.ljust(padded, b"\0")


def test_events_are_parsed_with_their_padded_names() -> None:
    data = record(1, IN_CLOSE_WRITE, 0, b"config.yaml", 16) + record(1, IN_Q_OVERFLOW, 0, b"", 0)
    assert parse_events(data) == [
        InotifyEvent(1, IN_CLOSE_WRITE, 0, "config.yaml"),
        InotifyEvent(1, IN_Q_OVERFLOW, 0, ""),
    ]


@pytest.mark.parametrize("cut", [3, 20])
def test_a_truncated_record_is_an_error(cut: int) -> None:
    data = record(1, IN_CLOSE_WRITE, 0, b"config.yaml", 16)
    with pytest.raises(ValueError, match="truncated inotify event"):
        parse_events(data[: len(data) - cut])


def test_a_file_counts_once_its_writer_closed_it_not_while_it_is_written(tmp_path: Path) -> None:
    # The kernel queues an event inside the syscall that causes it: read() right after is deterministic.
    with Inotify() as inotify:
        inotify.add_watch(tmp_path, FILE_DONE)
        with (tmp_path / "config.yaml").open("w") as file:
            file.write("half a con")
            file.flush()
            assert inotify.read() == []  # created and modified, still open: not a whole config yet
        assert [(e.mask, e.name) for e in inotify.read()] == [(IN_CLOSE_WRITE, "config.yaml")]
        os.replace(tmp_path / "config.yaml", tmp_path / "other")
        (tmp_path / "other").unlink()
        masks = [(e.mask, e.name) for e in inotify.read()]
        assert masks == [(IN_MOVED_FROM, "config.yaml"), (IN_MOVED_TO, "other"), (IN_DELETE, "other")]


def test_a_missing_directory_cannot_be_watched(tmp_path: Path) -> None:
    with Inotify() as inotify, pytest.raises(FileNotFoundError, match="inotify_add_watch"):
        inotify.add_watch(tmp_path / "absent", FILE_DONE)


async def test_watch_files_reports_the_names_asked_for_and_a_lost_directory(tmp_path: Path) -> None:
    directory = tmp_path / "etc"
    directory.mkdir()
    calls = 0
    changed_event = anyio.Event()

    def changed() -> None:
        nonlocal calls, changed_event
        calls += 1
        changed_event.set()

    async def next_change() -> None:
        nonlocal changed_event
        with anyio.fail_after(5):
            await changed_event.wait()
        changed_event = anyio.Event()

    lost: list[WatchLostError] = []
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            try:
                await watch_files(directory, ["a"], changed)
            except WatchLostError as exc:
                lost.append(exc)

        tg.start_soon(watch)
        await next_change()  # once watching
        assert calls == 1
        (directory / "b").write_text("not watched")
        (directory / "a").write_text("watched")
        await next_change()
        await anyio.wait_all_tasks_blocked()
        assert calls == 2
        for child in directory.iterdir():
            child.unlink()
        directory.rmdir()  # the watch ends with an error, so that its source is set up again
    assert calls == 3  # a's deletion
    assert [str(exc.filename) for exc in lost] == [str(directory)]
