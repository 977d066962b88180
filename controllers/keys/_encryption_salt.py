"""EncryptionSaltController: loads or creates the lockToSTATE salt once STATE is mounted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

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

from .._lasting_problem import LastingProblem

if TYPE_CHECKING:
    from volumed.runtime.controller import ControllerContext

UNUSABLE_RETRY: Final = 10.0
"""Seconds between quiet re-reads of an unusable salt file (an operator may repair it meanwhile)."""


class EncryptionSaltController(Controller):
    """Reads ``encryption-salt.yaml`` at the root of the mounted STATE (creating it the first time).

    Without a mounted STATE there is no salt, and keys locked to STATE wait. Wiping STATE loses the salt:
    locked volumes then cannot be opened any more (that is the point of lockToSTATE). An unusable salt file is
    kept as it is: it is reported once as a warning naming the file and the problem, then read again quietly
    until it is repaired; meanwhile there is no salt, so locked keys wait.
    """

    name = "EncryptionSalt"
    inputs = (Input(BLOCK, MountStatusDefinition.type),)
    outputs = (Output(EncryptionSaltDefinition.type, namespace=BLOCK),)

    def __init__(self, *, retry_interval: float = UNUSABLE_RETRY) -> None:
        self._retry = retry_interval
        self._problem = LastingProblem()

    async def reconcile(self, ctx: ControllerContext) -> None:
        mounts = await ctx.list(Kind(BLOCK, MountStatusDefinition.type), MountStatusSpec)
        state = next((m.spec for m in mounts if m.spec.volume_id == STATE), None)
        if state is None:
            self._problem.clear()  # a later mount reports its own file's problem again
            return
        try:
            salt = await load_or_create_salt(state.target)
        except SaltFileError as error:
            # The message names the file (SaltFileError does), never the salt.
            self._problem.report(
                ctx.logger,
                "the STATE salt file is unusable (kept as it is): keys locked to STATE wait for its repair",
                str(error),
            )
            ctx.requeue_after(self._retry)
            await ctx.apply(
                EncryptionSaltDefinition.new(ENCRYPTION_SALT_ID, EncryptionSaltSpec(error=str(error)))
            )
            return
        if self._problem.clear():
            ctx.logger.info("the STATE salt file is usable again")
        await ctx.apply(
            EncryptionSaltDefinition.new(ENCRYPTION_SALT_ID, EncryptionSaltSpec(disk_salt=salt.reveal()))
        )
