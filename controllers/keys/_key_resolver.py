"""KeyResolver: for each volume, which configured keys can be produced now, and why not."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from volumed.resources import (
    BLOCK,
    ENCRYPTION_SALT_ID,
    SYSTEM,
    SYSTEM_INFORMATION_ID,
    TPM_PHASE_ID,
    EncryptionSaltDefinition,
    EncryptionSaltSpec,
    KeyReadinessSpec,
    SystemInformationDefinition,
    SystemInformationSpec,
    TPMPhaseDefinition,
    TPMPhaseSpec,
    VolumeConfigDefinition,
    VolumeConfigSpec,
    VolumeKeySecretsDefinition,
    VolumeKeySecretsSpec,
    VolumeKeyStatusDefinition,
    VolumeKeyStatusSpec,
)
from volumed.runtime import Kind, Pointer
from volumed.runtime.controller import Controller, Input, Output

from ._providers import KeyEnvironment, slot_keys

if TYPE_CHECKING:
    from volumed.runtime.controller import ControllerContext, ControllerReader


async def key_environment(ctx: ControllerReader, base: KeyEnvironment) -> KeyEnvironment:
    """``base`` (TPM and KMS settings) completed with the node UUID and the STATE salt, when known."""
    info = await ctx.find(
        Pointer(SYSTEM, SystemInformationDefinition.type, SYSTEM_INFORMATION_ID), SystemInformationSpec
    )
    salt_resource = await ctx.find(
        Pointer(BLOCK, EncryptionSaltDefinition.type, ENCRYPTION_SALT_ID), EncryptionSaltSpec
    )
    salt, salt_error = None, ""
    if salt_resource is not None and salt_resource.spec.disk_salt is not None:
        from volumed.keys import DiskSalt

        salt = DiskSalt(salt_resource.spec.disk_salt.get_secret_value())
    elif salt_resource is not None:
        salt_error = salt_resource.spec.error
    window, window_reason = None, ""
    if base.tpm_gate is not None:
        phase = await ctx.find(Pointer(SYSTEM, TPMPhaseDefinition.type, TPM_PHASE_ID), TPMPhaseSpec)
        if phase is not None:
            window, window_reason = phase.spec.window, phase.spec.reason
    return dataclasses.replace(  # the node's UUID, salt and TPM window; the TPM and KMS settings as given
        base,
        node_uuid=info.spec.uuid if info is not None else None,
        salt=salt,
        salt_error=salt_error,
        tpm_window=window,
        tpm_window_reason=window_reason,
    )


KEY_INPUTS = (
    Input(BLOCK, VolumeConfigDefinition.type),
    Input(BLOCK, VolumeKeySecretsDefinition.type),
    Input(SYSTEM, SystemInformationDefinition.type),
    Input(BLOCK, EncryptionSaltDefinition.type),
    Input(SYSTEM, TPMPhaseDefinition.type),
)


class KeyResolver(Controller):
    """Publishes VolumeKeyStatus: per configured slot, ready or why not (no salt yet, no TPM, ...).

    Reachability of a KMS is learnt when a key is used (the VolumeFormatter reports it); readiness here
    is what can be known without contacting anything.
    """

    name = "KeyResolver"
    inputs = KEY_INPUTS
    outputs = (Output(VolumeKeyStatusDefinition.type, namespace=BLOCK),)

    def __init__(self, environment: KeyEnvironment) -> None:
        self._base = environment

    async def reconcile(self, ctx: ControllerContext) -> None:
        env = await key_environment(ctx, self._base)
        for volume in await ctx.list(Kind(BLOCK, VolumeConfigDefinition.type), VolumeConfigSpec):
            config = volume.spec
            if config.encryption is None:
                continue
            secrets = await ctx.find(
                Pointer(BLOCK, VolumeKeySecretsDefinition.type, volume.id), VolumeKeySecretsSpec
            )
            keys = slot_keys(volume.id, config, secrets.spec if secrets is not None else None, env)
            lock = {key.slot: key.lock_to_state for key in config.encryption.keys}
            spec = VolumeKeyStatusSpec(
                keys=tuple(
                    KeyReadinessSpec(
                        slot=key.slot,
                        kind=key.kind,
                        ready=key.provider is not None and not key.reason,
                        reason=key.reason,
                        lock_to_state=lock.get(key.slot, False),
                    )
                    for key in keys
                )
            )
            await ctx.apply(VolumeKeyStatusDefinition.new(volume.id, spec))
