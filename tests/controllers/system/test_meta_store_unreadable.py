"""A META that cannot be read while volumed runs (locked by another process past the wait, both copies
corrupt) leaves the MetaKeys of the last good read published: the runtime destroys every output a reconcile
does not write, so they were deleted and the node UUID (tag 0x0f) changed at run time (review21 F1/F2). A
META corrupt from the start publishes nothing, as before."""

from __future__ import annotations

import fcntl
import os
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from tests.controllers.system.test_meta_store_watch import NEVER, OneMetaDisk, meta_of
from volumed.controllers import ConfigLoader, MetaStore
from volumed.resources import (
    BLOCK,
    META_LOADED_ID,
    SYSTEM,
    MetaKeyDefinition,
    MetaLoadedDefinition,
    VolumeConfigDefinition,
    meta_key_id,
)
from volumed.runtime import Kind, Pointer
from volumed.runtime.testing import assert_resource, run_runtime
from volumed.storage.meta import write_uuid_override

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.storage.meta import MetaPartition

UUID = "11111111-2222-3333-4444-555555555555"
UUID_KEY = Pointer(SYSTEM, MetaKeyDefinition.type, meta_key_id(0x0F))
LOADED = Pointer(SYSTEM, MetaLoadedDefinition.type, META_LOADED_ID)
STATE_CONFIG = Pointer(BLOCK, VolumeConfigDefinition.type, "STATE")


def corrupt_both_copies(meta: MetaPartition) -> None:
    """Bad magic in both ADV copies, written through another open of the image and closed (a write-close)."""
    fd = os.open(meta.path, os.O_RDWR)
    try:
        for copy in (0, 256 * 1024):
            os.pwrite(fd, b"\xde\xad\xbe\xef", meta.offset + copy)
    finally:
        os.close(fd)


async def test_a_meta_locked_past_the_wait_keeps_its_tags_published(tmp_path: Path) -> None:
    meta = meta_of(tmp_path / "node.img")
    write_uuid_override(meta, UUID)
    store = MetaStore(poll_interval=0.05, watched_poll_interval=0.05, lock_timeout=0.1)
    async with run_runtime(OneMetaDisk(meta), store) as runtime:
        await assert_resource(runtime.state, UUID_KEY, lambda r: r.spec.value.get_secret_value() == UUID)
        with open(meta.path, "rb") as holder:  # noqa: ASYNC230 (opening a local file)
            fcntl.flock(holder, fcntl.LOCK_EX)  # another open file: a slow writer's lock
            await assert_resource(
                runtime.state, LOADED, lambda r: "locked by another process" in r.spec.error
            )
            await anyio.sleep(0.5)  # about ten reconciles that could not read META
            kept = await runtime.state.get(UUID_KEY)
            assert kept.spec.value.get_secret_value() == UUID
        await assert_resource(runtime.state, LOADED, lambda r: r.spec.error == "")


async def test_a_meta_corrupted_while_running_keeps_its_tags_published(tmp_path: Path) -> None:
    meta = meta_of(tmp_path / "node.img")
    write_uuid_override(meta, UUID)
    config = tmp_path / "config.yaml"
    config.write_text("apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\n")
    store = MetaStore(poll_interval=NEVER, watched_poll_interval=NEVER)
    async with run_runtime(OneMetaDisk(meta), ConfigLoader(config, poll_interval=NEVER), store) as runtime:
        await assert_resource(runtime.state, UUID_KEY, lambda r: r.spec.value.get_secret_value() == UUID)
        await anyio.to_thread.run_sync(corrupt_both_copies, meta)  # its close wakes MetaStore
        await assert_resource(runtime.state, LOADED, lambda r: "corrupt" in r.spec.error)
        await anyio.sleep(0.5)  # the reconcile that published the error has ended and cleaned up
        kept = await runtime.state.get(UUID_KEY)
        assert kept.spec.value.get_secret_value() == UUID


async def test_a_meta_corrupt_from_the_start_publishes_no_tags_and_no_state(tmp_path: Path) -> None:
    """Never read good: its tags are unknown, so there are none to keep; without a config STATE is not set up
    (its tag 9 is unknown) and MetaLoaded's error says why."""
    meta = meta_of(tmp_path / "node.img")
    write_uuid_override(meta, UUID)
    meta.set(9, b"null")
    corrupt_both_copies(meta)
    store = MetaStore(poll_interval=0.05, watched_poll_interval=0.05)
    controllers = (OneMetaDisk(meta), ConfigLoader(tmp_path / "no-config.yaml", poll_interval=0.05), store)
    async with run_runtime(*controllers) as runtime:
        await assert_resource(runtime.state, LOADED, lambda r: "corrupt" in r.spec.error)
        await anyio.sleep(0.5)
        assert await runtime.state.list(Kind(SYSTEM, MetaKeyDefinition.type)) == []
        assert await runtime.state.find(STATE_CONFIG) is None


async def test_tag_9_made_invalid_while_running_leaves_state_as_it_was_set_up(tmp_path: Path) -> None:
    """Without a config, STATE's VolumeConfig from tag 9 stays when another process writes a tag 9 that is
    not valid (it was destroyed, and STATE closed); a warning says it is invalid."""
    meta = meta_of(tmp_path / "node.img")
    meta.set(9, b"null")  # Talos' tag 9 for a STATE that is not encrypted
    store = MetaStore(poll_interval=NEVER, watched_poll_interval=NEVER)
    controllers = (OneMetaDisk(meta), ConfigLoader(tmp_path / "no-config.yaml", poll_interval=NEVER), store)
    async with run_runtime(*controllers) as runtime:
        await assert_resource(runtime.state, STATE_CONFIG, lambda r: r.spec.source == "meta")
        await anyio.to_thread.run_sync(meta.set, 9, b"{not json")  # its close wakes MetaStore
        tag_9 = Pointer(SYSTEM, MetaKeyDefinition.type, meta_key_id(9))
        await assert_resource(runtime.state, tag_9, lambda r: r.spec.value.get_secret_value() == "{not json")
        await anyio.sleep(0.5)  # the reconcile that read it has ended and cleaned up
        assert await runtime.state.find(STATE_CONFIG) is not None
