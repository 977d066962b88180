"""KeySlotSyncer: keeps the key slots and tokens of every open volume in line with its configured keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from volumed.resources import (
    BLOCK,
    KeySlotStatusDefinition,
    KeySlotStatusSpec,
    VolumeConfigDefinition,
    VolumeConfigSpec,
    VolumeKeySecretsDefinition,
    VolumeKeySecretsSpec,
    VolumePhase,
    VolumeStatusDefinition,
    VolumeStatusSpec,
)
from volumed.runtime import Kind, Pointer
from volumed.runtime.controller import Controller, Input, Output

from ..keys._key_resolver import KEY_INPUTS, key_environment
from ..keys._providers import slot_keys
from ._encryption import sync_key_slots
from ._formatter import RETRY_INTERVAL, keys_digest

if TYPE_CHECKING:
    from volumed.runtime.controller import ControllerContext

    from ..keys._providers import KeyEnvironment
    from ._services import VolumeServices

OPEN_PHASES = (VolumePhase.PREPARED, VolumePhase.READY)


class KeySlotSyncer(Controller):
    """Talos' key-slot sync, run after each open and again whenever the configured keys change.

    Every change is authorised by the volume key the VolumeFormatter holds (no slot is opened for it):
    the slot that opened is kept unless its configured key changed since; configured slots are checked
    against their fingerprints (a KDF run only for slots without one), re-enrolled when their key no longer
    matches, added when missing (fresh kms/tpm keys and tokens); slots not in the config are killed once a
    configured slot holds its key, except another tool's (bound to its own token, e.g. systemd-cryptenroll's),
    which are kept with their tokens. A key is never killed before its replacement is on disk: a slot's new
    key and token replace the old ones in one header write (a crash leaves the old or the new key, never
    none). A slot whose key cannot be made right now (KMS down, no TPM) is left alone and reported. Failures
    never close the volume; they show in KeySlotStatus and VolumeStatus.
    """

    name = "KeySlotSyncer"
    inputs = (*KEY_INPUTS, Input(BLOCK, VolumeStatusDefinition.type))
    outputs = (Output(KeySlotStatusDefinition.type, namespace=BLOCK),)

    def __init__(
        self, services: VolumeServices, environment: KeyEnvironment, *, retry_interval: float = RETRY_INTERVAL
    ) -> None:
        self._services = services
        self._base_env = environment
        self._retry = retry_interval

    async def reconcile(self, ctx: ControllerContext) -> None:
        env = await key_environment(ctx, self._base_env)
        statuses = {
            s.id: s.spec for s in await ctx.list(Kind(BLOCK, VolumeStatusDefinition.type), VolumeStatusSpec)
        }
        for volume in await ctx.list(Kind(BLOCK, VolumeConfigDefinition.type), VolumeConfigSpec):
            status = statuses.get(volume.id)
            opened = self._services.opened.get(volume.id)
            encryption = volume.spec.encryption
            if encryption is None or opened is None or status is None or status.phase not in OPEN_PHASES:
                continue
            secrets = await ctx.find(
                Pointer(BLOCK, VolumeKeySecretsDefinition.type, volume.id), VolumeKeySecretsSpec
            )
            secret_spec = secrets.spec if secrets is not None else None
            keys = slot_keys(volume.id, volume.spec, secret_spec, env)
            digest = keys_digest(volume.spec, secret_spec, keys)
            # Synced again when the keys change, and on a timer while some slot could not be made right
            # (a KMS or TPM that was unavailable may be back).
            if opened.keys_digest != digest or opened.result.failed_syncs:
                before = opened.result.kdf_runs
                with structlog.contextvars.bound_contextvars(volume=volume.id):  # on its key-slot lines
                    opened.result.failed_syncs = await sync_key_slots(
                        opened.location, encryption, keys, opened.result
                    )
                opened.keys_digest = digest
                opened.sync_kdf_runs = opened.result.kdf_runs - before
                if opened.result.failed_syncs:
                    ctx.logger.warning(
                        "key slot sync incomplete", volume=volume.id, failed=len(opened.result.failed_syncs)
                    )
            if opened.result.failed_syncs:
                ctx.requeue_after(self._retry)
            spec = KeySlotStatusSpec(
                keys_digest=opened.keys_digest,
                failed_syncs=tuple(opened.result.failed_syncs),
                kdf_runs=opened.sync_kdf_runs,
            )
            await ctx.apply(KeySlotStatusDefinition.new(volume.id, spec))
