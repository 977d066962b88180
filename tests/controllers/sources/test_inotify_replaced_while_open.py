"""watch_writes on a node replaced while another process still holds the old one open (a loop device over
an image renamed over): the old inode gives no IN_DELETE_SELF until its last close, so the watch stayed on
it and a write to the new node waited for the 60 s poll (review21 F5). Its link count changing (IN_ATTRIB)
with the path naming another inode now ends the watch, and MetaStore watches the new node."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import pytest

from tests.controllers.sources.test_inotify_writes import Woken
from tests.controllers.system.test_meta_store_watch import KEY, NEVER, SOON, OneMetaDisk, meta_of, value_is
from volumed.controllers import MetaStore
from volumed.controllers.sources import WatchLostError
from volumed.controllers.sources._inotify import watch_writes
from volumed.runtime.testing import assert_resource, run_runtime

if TYPE_CHECKING:
    from pathlib import Path


async def test_a_file_replaced_while_held_open_ends_the_watch_with_a_last_wake(tmp_path: Path) -> None:
    path = tmp_path / "meta.img"
    path.write_bytes(b"\0" * 4096)
    woken = Woken()

    async def replace_once_watched() -> None:
        await woken.until(1)
        (tmp_path / "new.img").write_bytes(b"\1" * 4096)
        os.replace(tmp_path / "new.img", path)

    with path.open("rb"):  # the old inode stays open: no IN_DELETE_SELF
        async with anyio.create_task_group() as tg:
            tg.start_soon(replace_once_watched)
            with anyio.fail_after(SOON), pytest.raises(WatchLostError):
                await watch_writes(path, woken)
    assert woken.count == 2


async def test_a_chmod_does_not_end_the_watch(tmp_path: Path) -> None:
    path = tmp_path / "meta.img"
    path.write_bytes(b"\0" * 4096)
    woken = Woken()
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch_writes, path, woken)
        await woken.until(1)
        path.chmod(0o600)  # IN_ATTRIB, same inode
        os.utime(path)
        await anyio.wait_all_tasks_blocked()
        os.close(os.open(path, os.O_RDWR))  # still watched
        await woken.until(2)
        tg.cancel_scope.cancel()


async def test_meta_replaced_while_its_old_node_is_held_open_is_watched_again(tmp_path: Path) -> None:
    meta = meta_of(tmp_path / "node.img")
    meta.set(0x0C, b"old node")
    with open(meta.path, "rb"):  # noqa: ASYNC230 (as a loop device over the image holds it)
        async with run_runtime(
            OneMetaDisk(meta), MetaStore(poll_interval=NEVER, watched_poll_interval=NEVER)
        ) as runtime:
            await assert_resource(runtime.state, KEY, value_is("old node"))
            await anyio.to_thread.run_sync(shutil.copyfile, meta.path, tmp_path / "copy.img")
            await anyio.to_thread.run_sync(os.replace, tmp_path / "copy.img", meta.path)
            await assert_resource(runtime.state, KEY, value_is("old node"))
            await anyio.to_thread.run_sync(meta.set, 0x0C, b"new node, written")
            await assert_resource(runtime.state, KEY, value_is("new node, written"), within=SOON)
