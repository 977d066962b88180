"""EncryptionSaltController: loads or creates the lockToSTATE salt once STATE is mounted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.config import STATE
from volumed.keys import SaltFileError, load_or_create_salt
from volumed.resources import (
    BLOCK,
    ENCRYPTION_SALT_ID,
    EncryptionSaltDefinition,
    EncryptionSaltSpec,
    MountStatusDefinition,
    MountStatusSpec,
)
from volumed.runtime import Kind
from volumed.runtime.controller import Controller, Input, Output

if TYPE_CHECKING:
    from volumed.runtime.controller import ControllerContext


class EncryptionSaltController(Controller):
    """Reads ``encryption-salt.yaml`` at the root of the mounted STATE (creating it the first time).

    Without a mounted STATE there is no salt, and keys locked to STATE wait. Wiping STATE loses the salt:
    locked volumes then cannot be opened any more (that is the point of lockToSTATE).
    """

    name = "EncryptionSalt"
    inputs = (Input(BLOCK, MountStatusDefinition.type),)
    outputs = (Output(EncryptionSaltDefinition.type, namespace=BLOCK),)

    async def reconcile(self, ctx: ControllerContext) -> None:
        mounts = await ctx.list(Kind(BLOCK, MountStatusDefinition.type), MountStatusSpec)
        state = next((m.spec for m in mounts if m.spec.volume_id == STATE), None)
        if state is None:
            return
        try:
            salt = await load_or_create_salt(state.target)
        except SaltFileError as error:
            ctx.logger.error("the STATE salt file is unusable", error=str(error))
            raise
        await ctx.apply(
            EncryptionSaltDefinition.new(ENCRYPTION_SALT_ID, EncryptionSaltSpec(disk_salt=salt.reveal()))
        )
