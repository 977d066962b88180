"""MetaStore wakes when META's node is closed after a write (inotify), follows META to another device, and
does not wake itself into a loop with its own tag 9 writes."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import structlog.testing

from volumed.controllers import ConfigLoader, MetaStore
from volumed.resources import (
    BLOCK,
    META_LOADED_ID,
    SYSTEM,
    DiscoveredVolumeDefinition,
    DiscoveredVolumeSpec,
    DiskDefinition,
    DiskSpec,
    MetaKeyDefinition,
    MetaLoadedDefinition,
    meta_key_id,
)
from volumed.runtime import Pointer
from volumed.runtime.controller import Controller, EventSource, Output
from volumed.runtime.testing import assert_resource, run_runtime
from volumed.storage import disklayout
from volumed.storage.meta import META_PARTITION_LABEL, MetaPartition

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.runtime.controller import ControllerContext, Wake

MIB = 1024 * 1024
NEVER = 600.0  # MetaStore's polls here: a value seen within seconds was not found by polling
SOON = 5.0
TAG = 0x0C  # USER_RESERVED_1: nothing in volumed acts on it
KEY = Pointer(SYSTEM, MetaKeyDefinition.type, meta_key_id(TAG))
STATE_STATIC = """\
apiVersion: v1alpha1
kind: VolumeConfig
name: STATE
encryption:
  provider: luks2
  keys:
    - static:
        passphrase: state-secret
      slot: 0
"""


def meta_of(image: Path) -> MetaPartition:
    table = disklayout.create_disk_image(image, 128 * MIB, state_size=32 * MIB)
    meta = table.find("META")
    assert meta is not None
    return MetaPartition(image, offset=meta.offset(table.sector_size))


def value_is(expected: str) -> object:
    return lambda r: r.spec.value.get_secret_value() == expected


class OneMetaDisk(Controller):
    """Discovery of one disk whose META the test moves to another image (``show``), as a rescan would."""

    name = "OneMetaDisk"
    outputs = (
        Output(DiskDefinition.type, namespace=BLOCK),
        Output(DiscoveredVolumeDefinition.type, namespace=BLOCK),
    )

    def __init__(self, meta: MetaPartition) -> None:
        self.meta = meta
        self._wake: Wake | None = None
        self.sources = (EventSource("rescan", self._rescans),)

    async def _rescans(self, wake: Wake) -> None:
        self._wake = wake
        wake()
        await anyio.sleep_forever()

    def show(self, meta: MetaPartition) -> None:
        self.meta = meta
        assert self._wake is not None
        self._wake()

    async def reconcile(self, ctx: ControllerContext) -> None:
        path = self.meta.path
        volume = DiscoveredVolumeSpec(
            dev_path=path,
            parent=path,
            offset=self.meta.offset,
            size=MIB,
            partition_label=META_PARTITION_LABEL,
        )
        await ctx.apply(DiscoveredVolumeDefinition.new("disk-meta", volume))
        await ctx.apply(DiskDefinition.new("disk", DiskSpec(dev_path=path, size=128 * MIB, image=True)))


async def test_the_watch_follows_meta_to_another_device(tmp_path: Path) -> None:
    first, second = meta_of(tmp_path / "first.img"), meta_of(tmp_path / "second.img")
    first.set(TAG, b"first")
    second.set(TAG, b"second")
    disk = OneMetaDisk(first)
    async with run_runtime(disk, MetaStore(poll_interval=NEVER, watched_poll_interval=NEVER)) as runtime:
        await assert_resource(runtime.state, KEY, value_is("first"))
        await anyio.to_thread.run_sync(first.set, TAG, b"first, written")  # the watch works
        await assert_resource(runtime.state, KEY, value_is("first, written"), within=SOON)
        disk.show(second)
        await assert_resource(runtime.state, KEY, value_is("second"))  # read on the input change
        await anyio.to_thread.run_sync(second.set, TAG, b"second, written")  # seen only if watched
        await assert_resource(runtime.state, KEY, value_is("second, written"), within=SOON)


class CountingMetaStore(MetaStore):
    """Counts reconciles, to see that its own writes do not wake it over and over."""

    def __init__(self) -> None:
        super().__init__(poll_interval=NEVER, watched_poll_interval=NEVER)
        self.runs = 0

    async def reconcile(self, ctx: ControllerContext) -> None:
        await super().reconcile(ctx)
        self.runs += 1


async def test_its_own_tag_9_write_wakes_it_once_not_forever(tmp_path: Path) -> None:
    meta = meta_of(tmp_path / "node.img")
    config = tmp_path / "config.yaml"
    config.write_text(STATE_STATIC)
    store = CountingMetaStore()
    controllers = (OneMetaDisk(meta), ConfigLoader(config, poll_interval=NEVER), store)
    async with run_runtime(*controllers) as runtime:
        await assert_resource(runtime.state, Pointer(SYSTEM, MetaKeyDefinition.type, meta_key_id(9)))
        await anyio.sleep(1.0)  # settled: the write's own close woke it (at most) once more
        settled = store.runs
        await anyio.sleep(1.0)  # each read opens META read-only: no event; a write-open would loop
        assert store.runs == settled
        await anyio.to_thread.run_sync(meta.set, TAG, b"from another writer")
        await assert_resource(runtime.state, KEY, value_is("from another writer"), within=SOON)


async def test_a_failing_tag_9_write_is_retried_on_the_poll_not_on_its_own_close(tmp_path: Path) -> None:
    meta = meta_of(tmp_path / "node.img")
    with open(meta.path, "r+b") as image:  # noqa: ASYNC230 (before the runtime starts)
        image.seek(meta.offset)
        image.write(b"not META" * 4096)  # no valid copy and not blank: every write is refused
    config = tmp_path / "config.yaml"
    config.write_text(STATE_STATIC)
    store = CountingMetaStore()
    controllers = (OneMetaDisk(meta), ConfigLoader(config, poll_interval=NEVER), store)
    with structlog.testing.capture_logs() as logs:
        async with run_runtime(*controllers) as runtime:
            loaded = Pointer(SYSTEM, MetaLoadedDefinition.type, META_LOADED_ID)
            await assert_resource(runtime.state, loaded, lambda r: "corrupt" in r.spec.error)
            await anyio.sleep(1.0)  # the refused write opened META for writing: one wake-up (at most)
            settled = store.runs
            await anyio.sleep(1.0)
            assert store.runs == settled
    refused = [e for e in logs if e["event"] == "could not write STATE's encryption to META"]
    assert len(refused) == 1


async def test_a_node_made_anew_is_watched_again(tmp_path: Path) -> None:
    meta = meta_of(tmp_path / "node.img")
    meta.set(TAG, b"old node")
    async with run_runtime(
        OneMetaDisk(meta), MetaStore(poll_interval=NEVER, watched_poll_interval=NEVER)
    ) as runtime:
        await assert_resource(runtime.state, KEY, value_is("old node"))
        # as devtmpfs removes a partition's node and makes it again when the table is read again: the
        # watched inode is gone, the path names a new one (same discovered volume: no input change)
        await anyio.to_thread.run_sync(shutil.copyfile, meta.path, tmp_path / "copy.img")
        await anyio.to_thread.run_sync(os.replace, tmp_path / "copy.img", meta.path)
        await assert_resource(runtime.state, KEY, value_is("old node"))
        await anyio.to_thread.run_sync(meta.set, TAG, b"new node, written")
        await assert_resource(runtime.state, KEY, value_is("new node, written"), within=SOON)
