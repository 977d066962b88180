"""MetaStore: the META partition as MetaKey resources; tag 9 (STATE encryption) follows the config."""

from __future__ import annotations

import contextlib
import time
from functools import partial
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from volumed.config import STATE, MetaEncryptionError, encryption_from_meta_json
from volumed.controllers.config._translate import system_volume
from volumed.resources import (
    BLOCK,
    CONFIG,
    CONFIG_STATUS_ID,
    META_LOADED_ID,
    SYSTEM,
    ConfigStatusDefinition,
    ConfigStatusSpec,
    DiscoveredVolumeDefinition,
    DiscoveredVolumeSpec,
    DiskDefinition,
    DiskSpec,
    MetaKeyDefinition,
    MetaKeySpec,
    MetaLoadedDefinition,
    MetaLoadedSpec,
    VolumeConfigDefinition,
    VolumeKeySecretsDefinition,
    VolumeKeySecretsSpec,
    VolumePhase,
    VolumeStatusDefinition,
    VolumeStatusSpec,
    meta_key_id,
)
from volumed.runtime import Kind, Pointer, Resource
from volumed.runtime.controller import Controller, EventSource, Input, Output, OutputKind
from volumed.storage.meta import (
    DEFAULT_LOCK_TIMEOUT,
    META_PARTITION_LABEL,
    MetaError,
    MetaPartition,
    MetaState,
)

from .._lasting_problem import LastingProblem
from ..block._provisioning import meta_volume
from ..sources import WatchLostError, watch_writes

if TYPE_CHECKING:
    from volumed.config import EncryptionSpec
    from volumed.runtime.controller import ControllerContext, Wake

STATE_ENCRYPTION_TAG = 9


class MetaStore(Controller):
    """Publishes META's tags, writes tag 9 when the config's STATE encryption changes, and without a config
    produces STATE's VolumeConfig from tag 9 (so STATE can be unlocked before its config is readable).

    The config always wins over META: while a config is present, tag 9 is only written, never read.
    MetaLoaded says when META's tags are known: read, or META found on no disk once discovery showed them.
    A META that cannot be read (both copies corrupt, locked past the wait, unreadable) leaves what the last
    good read published as it was, MetaKeys and STATE's VolumeConfig alike; MetaLoaded's error says why.
    Talos reads META once at boot and never closes STATE because of it.

    META is read again when another process closes its device node (or disk image) after opening it for
    writing: an inotify watch on that node, as udev's "watch" option, which moves to the new node when
    discovery finds META elsewhere. The poll stays as the fallback for what the watch cannot see (a write
    through another node of the same device, a writer that has not closed yet): every ``poll_interval``
    seconds while no watch works, every ``watched_poll_interval`` seconds while one does.
    """

    name = "MetaStore"
    inputs = (
        Input(BLOCK, DiscoveredVolumeDefinition.type),
        Input(BLOCK, DiskDefinition.type),
        Input(BLOCK, VolumeKeySecretsDefinition.type, STATE),
        Input(CONFIG, ConfigStatusDefinition.type, CONFIG_STATUS_ID),
        Input(BLOCK, VolumeStatusDefinition.type, STATE),
    )
    outputs = (
        Output(MetaKeyDefinition.type, OutputKind.EXCLUSIVE, SYSTEM),
        Output(MetaLoadedDefinition.type, OutputKind.EXCLUSIVE, SYSTEM),
        Output(VolumeConfigDefinition.type, OutputKind.SHARED, BLOCK),
        Output(VolumeKeySecretsDefinition.type, OutputKind.SHARED, BLOCK),
    )

    def __init__(
        self,
        *,
        poll_interval: float = 5.0,
        watched_poll_interval: float = 60.0,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self._poll = poll_interval
        self._lock_timeout = lock_timeout  # how long a read or write waits for another process's flock
        self._watched_poll = watched_poll_interval
        self._problem = LastingProblem()
        self.sources = (EventSource("META device", self._watch),)
        self._target: str | None = None  # the node (or image) holding META, to be watched
        self._watching: str | None = None  # the node a working watch is on
        self._retarget: anyio.CancelScope | None = None  # cancelled to move the watch to a new target
        self._write_failed: tuple[bytes, float] | None = None  # tag 9 value whose write failed, and when
        self._write_problem = LastingProblem()
        self._tags: dict[
            int, bytes
        ] = {}  # the tags of the last good read: published while META is unreadable
        self._state: tuple[EncryptionSpec | None] | None = None  # STATE's encryption published from META

    async def _watch(self, wake: Wake) -> None:
        """Wake when META's node is closed by a writer (once a write is whole, not while it is written), on
        the node the reconcile last found META on (`_follow` moves it).

        A node removed or replaced while watched (a partition's node is made anew when its table is read
        again) is watched again at once; if it is not back, the source fails and the runtime starts it again
        later.
        """
        try:
            while True:
                path = self._target
                self._retarget = scope = anyio.CancelScope()
                with scope:
                    if path is None:
                        await anyio.sleep_forever()
                    else:  # a lost node's last event woke the controller; then the node now there is watched
                        with contextlib.suppress(WatchLostError):
                            await watch_writes(path, partial(self._watch_works, path, wake))
                self._watching = None
        finally:
            self._watching = None

    def _watch_works(self, path: str, wake: Wake) -> None:
        """The watch on ``path`` is set up, or saw a write: the poll may be the long one."""
        self._watching = path
        wake()

    def _follow(self, target: str | None) -> None:
        """Move the watch to META's node (None: no META to watch)."""
        if target != self._target:
            self._target = target
            if self._retarget is not None:
                self._retarget.cancel()

    async def reconcile(self, ctx: ControllerContext) -> None:
        # Disks first: Discovery publishes a scan's volumes before its disks, so once a Disk is seen, every
        # volume of that scan is in the list read next, and a META missing from it is on no readable disk.
        disks = await ctx.list(Kind(BLOCK, DiskDefinition.type), DiskSpec)
        volumes = await ctx.list(Kind(BLOCK, DiscoveredVolumeDefinition.type), DiscoveredVolumeSpec)
        metas = [v.spec for v in volumes if v.spec.partition_label == META_PARTITION_LABEL]
        meta = meta_volume(metas)  # META on an invalid partition table: not used
        self._follow(meta.dev_path if meta is not None else None)
        watched = meta is not None and self._watching == meta.dev_path
        ctx.requeue_after(self._watched_poll if watched else self._poll)
        config = await ctx.find(
            Pointer(CONFIG, ConfigStatusDefinition.type, CONFIG_STATUS_ID), ConfigStatusSpec
        )
        config_present = config is not None and config.spec.present
        no_config = config is not None and not config.spec.present  # the ConfigLoader looked: none
        if not no_config:
            self._state = None  # not published by this reconcile: the runtime removes it
        if meta is None:
            if metas:
                await self._republish(ctx, no_config)
                await _loaded(ctx, found=False, error=f"META is not used: {metas[0].error}")
            elif disks:
                self._tags = {}
                await _loaded(ctx, found=False)
                if no_config:  # no tag 9 to read: STATE is looked for, unencrypted, as Talos does
                    await self._publish_state(ctx, None)
            else:
                await self._republish(ctx, no_config)
            return
        partition = MetaPartition(meta.dev_path, offset=meta.offset, lock_timeout=self._lock_timeout)
        secrets = await ctx.find(Pointer(BLOCK, VolumeKeySecretsDefinition.type, STATE), VolumeKeySecretsSpec)
        wanted = (
            secrets.spec.meta_json if secrets is not None and secrets.spec.meta_json is not None else None
        )
        if (
            config_present
            and wanted is not None
            and not await _config_describes_state(ctx, volumes, wanted.get_secret_value())
        ):
            wanted = None  # tag 9 keeps describing how to open the STATE that exists
        try:
            contents = await anyio.to_thread.run_sync(partition.read)
            if (
                config_present
                and wanted is not None
                and contents.tags.get(STATE_ENCRYPTION_TAG) != wanted.get_secret_value()
                and await self._write_tag_9(ctx, partition, wanted.get_secret_value())
            ):
                contents = await anyio.to_thread.run_sync(partition.read)
        except MetaError as error:
            self._problem.report(ctx.logger, "META is unreadable", str(error))
            await self._republish(ctx, no_config)
            await _loaded(ctx, found=True, error=f"META is unreadable: {error}")
            return
        reasons = "; ".join(f"copy {i}: {c.error}" for i, c in enumerate(contents.copies) if c.error)
        if contents.state is MetaState.CORRUPT:
            # Its tags are unknown, not unset: those of the last good read stay. Without one, and without a
            # config, STATE is not set up: tag 9 is unknown.
            problem = "META is corrupt (no valid copy): its tags, tag 9 included, are unknown"
            self._problem.report(ctx.logger, problem, reasons)
            await self._republish(ctx, no_config)
            await _loaded(ctx, found=True, error=problem)
            return
        if contents.state is MetaState.DEGRADED:  # its tags are known; the next write repairs the bad copy
            self._problem.report(ctx.logger, "META has one valid copy: the other is damaged", reasons)
        else:
            self._problem.clear()
        self._tags = dict(contents.tags)
        for tag, value in sorted(contents.tags.items()):
            await _publish_tag(ctx, tag, value)
        await _loaded(ctx, found=True)  # after the tags: whoever sees it sees them
        if no_config and STATE_ENCRYPTION_TAG in contents.tags:
            # only once the ConfigLoader has looked and found no config: the config always wins
            try:
                encryption = encryption_from_meta_json(contents.tags[STATE_ENCRYPTION_TAG])
            except MetaEncryptionError as error:
                ctx.logger.warning("META tag 9 is invalid; STATE's encryption is unknown", error=str(error))
                if self._state is not None:  # STATE stays as it was set up
                    await _state_from_meta(ctx, self._state[0])
                return
            await self._publish_state(ctx, encryption)
        elif no_config:
            # No tag 9 (Talos writes it only for a config that encrypts STATE, or "null"): STATE is looked
            # for unencrypted, as Talos' manageStateNoConfig does; a STATE that holds LUKS2 is then refused
            # ("filesystem type mismatch"), never written. (No STATE was set up: `--once` waited out its
            # timeout with an empty table.)
            await self._publish_state(ctx, None)

    async def _publish_state(self, ctx: ControllerContext, encryption: EncryptionSpec | None) -> None:
        self._state = (encryption,)
        await _state_from_meta(ctx, encryption)

    async def _republish(self, ctx: ControllerContext, no_config: bool) -> None:
        """Publish again what the last good read published: the runtime destroys every output a reconcile
        does not write, and a META that cannot be read now says nothing about its tags (a MetaKey gone would
        change the node UUID; STATE's VolumeConfig gone would unmount and close STATE)."""
        for tag, value in sorted(self._tags.items()):
            await _publish_tag(ctx, tag, value)
        if no_config and self._state is not None:
            await _state_from_meta(ctx, self._state[0])

    async def _write_tag_9(self, ctx: ControllerContext, partition: MetaPartition, value: bytes) -> bool:
        """Write tag 9 (read first: only when it differs, since every open for writing, even one that
        writes nothing, wakes the watch); returns whether it was written.

        A failed write is tried again on the ``poll_interval`` timer, not on the wake-up that its own
        close gives (that would retry at once, forever, on a device that fails every write).
        """
        failed = self._write_failed
        if failed is not None and failed[0] == value and time.monotonic() - failed[1] < self._poll:
            ctx.requeue_after(self._poll - (time.monotonic() - failed[1]))
            return False
        try:
            written = await anyio.to_thread.run_sync(partial(partition.set, STATE_ENCRYPTION_TAG, value))
        except MetaError as error:
            self._write_failed = (value, time.monotonic())
            ctx.requeue_after(self._poll)
            self._write_problem.report(ctx.logger, "could not write STATE's encryption to META", str(error))
            return False
        self._write_failed = None
        self._write_problem.clear()
        if written:
            ctx.logger.info("wrote STATE's encryption config to META")
        return written


async def _publish_tag(ctx: ControllerContext, tag: int, value: bytes) -> None:
    text = value.decode("utf-8", "backslashreplace")
    await ctx.apply(MetaKeyDefinition.new(meta_key_id(tag), MetaKeySpec(value=text)))


async def _state_from_meta(ctx: ControllerContext, encryption: EncryptionSpec | None) -> None:
    """STATE's VolumeConfig (and secrets) without a machine config: located only, never provisioned."""
    desired = system_volume(STATE, encryption, source="meta")
    config = desired.config.model_copy(update={"locate_non_empty": True})
    await ctx.apply(VolumeConfigDefinition.new(STATE, config))
    if desired.secrets is not None:
        await ctx.apply(VolumeKeySecretsDefinition.new(STATE, desired.secrets))


async def _loaded(ctx: ControllerContext, *, found: bool, error: str = "") -> None:
    """META has been looked at: its tags are published (or it has none to publish)."""
    await ctx.apply(MetaLoadedDefinition.new(META_LOADED_ID, MetaLoadedSpec(found=found, error=error)))


async def _config_describes_state(
    ctx: ControllerContext, volumes: list[Resource[DiscoveredVolumeSpec]], wanted: bytes
) -> bool:
    """Whether tag 9 may take the config's STATE encryption: tag 9 is what opens STATE without a config, so
    it never describes a STATE other than the one on disk.

    A STATE partition that holds nothing yet (it is to be made) takes it at once, before it is formatted, as
    Talos writes it: a crash after the format finds tag 9 already written. A STATE that holds something takes
    it only once the config opened it: ready, and not kept with another encryption until the next boot. A
    config that fails to open it (no encryption for a LUKS2 STATE, "filesystem type mismatch"; keys that do
    not open it) leaves tag 9 as it was. Talos writes tag 9 from any config.
    """
    status = await ctx.find(Pointer(BLOCK, VolumeStatusDefinition.type, STATE), VolumeStatusSpec)
    if status is not None and status.spec.phase == VolumePhase.FAILED:
        return False
    if status is None or status.spec.phase != VolumePhase.READY:  # (discovery may lag a format: not asked)
        on_disk = [v.spec for v in volumes if v.spec.partition_label == STATE and not v.spec.error]
        return not any(v.name for v in on_disk)
    try:  # the value itself, not STATE's VolumeConfig: the two are applied apart and may not match yet
        encryption = encryption_from_meta_json(wanted)
    except MetaEncryptionError:
        return False
    provider = encryption.effective_provider if encryption is not None and encryption.enabled else ""
    return provider == status.spec.encryption_provider
