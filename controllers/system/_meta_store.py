"""MetaStore: the META partition as MetaKey resources; tag 9 (STATE encryption) follows the config."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import anyio.to_thread

from volumed.config import STATE, MetaEncryptionError, encryption_from_meta_json
from volumed.controllers.config._translate import system_volume
from volumed.resources import (
    BLOCK,
    CONFIG,
    CONFIG_STATUS_ID,
    SYSTEM,
    ConfigStatusDefinition,
    ConfigStatusSpec,
    DiscoveredVolumeDefinition,
    DiscoveredVolumeSpec,
    MetaKeyDefinition,
    MetaKeySpec,
    VolumeConfigDefinition,
    VolumeConfigSpec,
    VolumeKeySecretsDefinition,
    VolumeKeySecretsSpec,
    VolumeStatusDefinition,
    VolumeStatusSpec,
    meta_key_id,
)
from volumed.runtime import Kind, Pointer
from volumed.runtime.controller import Controller, Input, Output, OutputKind
from volumed.storage.meta import META_PARTITION_LABEL, MetaError, MetaPartition, MetaState

from .._lasting_problem import LastingProblem
from ..block._formatter import kept_encryption_change

if TYPE_CHECKING:
    from volumed.runtime.controller import ControllerContext

STATE_ENCRYPTION_TAG = 9


class MetaStore(Controller):
    """Publishes META's tags, writes tag 9 when the config's STATE encryption changes, and without a config
    produces STATE's VolumeConfig from tag 9 (so STATE can be unlocked before its config is readable).

    The config always wins over META: while a config is present, tag 9 is only written, never read.
    """

    name = "MetaStore"
    inputs = (
        Input(BLOCK, DiscoveredVolumeDefinition.type),
        Input(BLOCK, VolumeKeySecretsDefinition.type, STATE),
        Input(CONFIG, ConfigStatusDefinition.type, CONFIG_STATUS_ID),
        Input(BLOCK, VolumeStatusDefinition.type, STATE),
    )
    outputs = (
        Output(MetaKeyDefinition.type, OutputKind.EXCLUSIVE, SYSTEM),
        Output(VolumeConfigDefinition.type, OutputKind.SHARED, BLOCK),
        Output(VolumeKeySecretsDefinition.type, OutputKind.SHARED, BLOCK),
    )

    def __init__(self, *, poll_interval: float = 5.0) -> None:
        self._poll = poll_interval
        self._problem = LastingProblem()

    async def reconcile(self, ctx: ControllerContext) -> None:
        ctx.requeue_after(self._poll)
        volumes = await ctx.list(Kind(BLOCK, DiscoveredVolumeDefinition.type), DiscoveredVolumeSpec)
        meta = next(
            (v.spec for v in volumes if v.spec.partition_label == META_PARTITION_LABEL and not v.spec.error),
            None,
        )  # META on a disk with an invalid partition table is not written
        if meta is None:
            return
        partition = MetaPartition(meta.dev_path, offset=meta.offset)
        config = await ctx.find(
            Pointer(CONFIG, ConfigStatusDefinition.type, CONFIG_STATUS_ID), ConfigStatusSpec
        )
        config_present = config is not None and config.spec.present
        secrets = await ctx.find(Pointer(BLOCK, VolumeKeySecretsDefinition.type, STATE), VolumeKeySecretsSpec)
        wanted = (
            secrets.spec.meta_json if secrets is not None and secrets.spec.meta_json is not None else None
        )
        if config_present and wanted is not None and await _state_keeps_other_encryption(ctx):
            wanted = None  # STATE stays as it is until the next boot: so does the record of how to open it
        if config_present and wanted is not None:
            try:
                written = await anyio.to_thread.run_sync(
                    partial(partition.set, STATE_ENCRYPTION_TAG, wanted.get_secret_value())
                )
            except MetaError as error:
                ctx.logger.warning("could not write STATE's encryption to META", error=str(error))
            else:
                if written:
                    ctx.logger.info("wrote STATE's encryption config to META")
        try:
            contents = await anyio.to_thread.run_sync(partition.read)
        except MetaError as error:
            self._problem.report(ctx.logger, "META is unreadable", str(error))
            return
        if contents.state is MetaState.CORRUPT:
            # Its tags are unknown, not unset: without a config STATE cannot be set up from tag 9.
            reasons = "; ".join(f"copy {i}: {c.error}" for i, c in enumerate(contents.copies) if c.error)
            self._problem.report(
                ctx.logger, "META is corrupt (no valid copy): its tags, tag 9 included, are unknown", reasons
            )
        else:
            self._problem.clear()
        for tag, value in sorted(contents.tags.items()):
            text = value.decode("utf-8", "backslashreplace")
            await ctx.apply(MetaKeyDefinition.new(meta_key_id(tag), MetaKeySpec(value=text)))
        if config is not None and not config_present and STATE_ENCRYPTION_TAG in contents.tags:
            # only once the ConfigLoader has looked and found no config: the config always wins
            try:
                encryption = encryption_from_meta_json(contents.tags[STATE_ENCRYPTION_TAG])
            except MetaEncryptionError as error:
                ctx.logger.warning("META tag 9 is invalid; STATE's encryption is unknown", error=str(error))
                return
            desired = system_volume(STATE, encryption, source="meta")
            await ctx.apply(VolumeConfigDefinition.new(STATE, desired.config))
            if desired.secrets is not None:
                await ctx.apply(VolumeKeySecretsDefinition.new(STATE, desired.secrets))


async def _state_keeps_other_encryption(ctx: ControllerContext) -> bool:
    """Whether STATE is ready with an encryption its config no longer has (the formatter keeps a ready
    volume as it is until the next boot): tag 9 must keep describing how to open the STATE that exists."""
    config = await ctx.find(Pointer(BLOCK, VolumeConfigDefinition.type, STATE), VolumeConfigSpec)
    status = await ctx.find(Pointer(BLOCK, VolumeStatusDefinition.type, STATE), VolumeStatusSpec)
    return (
        config is not None
        and status is not None
        and kept_encryption_change(config.spec, status.spec) is not None
    )
