"""BootPhaseController: the PCR 11 window in which TPM keys under Talos' signed policy work (Talos'
PCRStatusController).

At start it opens the window (``enter-machined``) if the booted UKI's signatures allow it; once the boot's
volumes are open it closes it (``start-the-world``) for the rest of the boot, after the key calls in flight
have returned. A stop before that closes it too, so nothing started after volumed can unseal those keys.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread
import structlog

from volumed.controllers._convergence import convergence
from volumed.resources import (
    BLOCK,
    CONFIG,
    SYSTEM,
    TPM_PHASE_ID,
    ConfigStatusDefinition,
    KeySlotStatusDefinition,
    MountStatusDefinition,
    TPMPhaseDefinition,
    TPMPhaseSpec,
    TPMWindow,
    VolumeConfigDefinition,
    VolumeStatusDefinition,
)
from volumed.runtime.controller import Controller, Input, Output

from ._providers import tpm_absent_reason

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.keys import KeyGate
    from volumed.runtime.controller import ControllerContext

log = structlog.get_logger("volumed.tpm.phase")

LOCKED: Final = "TPM keys are locked for the rest of this boot: PCR 11 was extended with start-the-world"
CLOSED_REASON: Final = f"{LOCKED} after the boot's volumes opened (reboot to use them again)"
CLOSED_AT_STOP_REASON: Final = f"{LOCKED} when volumed stopped (reboot to use them again)"


class BootPhases(StrEnum):
    """Which PCR 11 phase words volumed extends (``volumed run --tpm-boot-phases``)."""

    BOTH = "both"
    """``enter-machined`` at start (when the UKI signed it), ``start-the-world`` once the volumes are open."""
    ENTER = "enter"
    """Only ``enter-machined``: the image's own init extends ``start-the-world``."""
    LEAVE = "leave"
    """Only ``start-the-world``: the image's init extended ``enter-machined`` before volumed started."""
    OFF = "off"
    """Neither: PCR 11 is left alone and TPM keys are tried whenever they are needed."""


class BootPhaseController(Controller):
    """Publishes TPMPhase (``system``/``pcr11``) and extends PCR 11 at the two phase changes.

    ``public_key`` and ``signature``: the UKI's files (None: systemd-stub's places under ``/.extra``).
    """

    name = "BootPhase"
    inputs = (
        Input(BLOCK, VolumeConfigDefinition.type),
        Input(BLOCK, VolumeStatusDefinition.type),
        Input(BLOCK, MountStatusDefinition.type),
        Input(BLOCK, KeySlotStatusDefinition.type),
        Input(CONFIG, ConfigStatusDefinition.type),
    )
    outputs = (Output(TPMPhaseDefinition.type, namespace=SYSTEM),)

    def __init__(
        self,
        gate: KeyGate,
        *,
        tcti: str,
        public_key: Path | None = None,
        signature: Path | None = None,
        phases: BootPhases = BootPhases.BOTH,
    ) -> None:
        self._gate = gate
        self._tcti = tcti
        self._public_key = public_key
        self._signature = signature
        self._phases = phases
        self._spec: TPMPhaseSpec | None = None

    @property
    def window(self) -> TPMWindow | None:
        """The window as last published (None before the first look at PCR 11)."""
        return self._spec.window if self._spec is not None else None

    async def reconcile(self, ctx: ControllerContext) -> None:
        if self._spec is None:
            self._spec = await self._enter()
            self._log_window(self._spec)
        elif self._leaves and self._spec.window is TPMWindow.OPEN and (await convergence(ctx)).volumes_open:
            await self._leave(CLOSED_REASON)
            self._log_window(self._spec)
        await ctx.apply(TPMPhaseDefinition.new(TPM_PHASE_ID, self._spec))

    async def close_at_stop(self) -> None:
        """Close a window this run may still have open (the subsystem stops before its volumes opened)."""
        if self._leaves and self._spec is not None and self._spec.window is TPMWindow.OPEN:
            with anyio.CancelScope(shield=True):
                await self._leave(CLOSED_AT_STOP_REASON)
                self._log_window(self._spec)

    @property
    def _leaves(self) -> bool:
        return self._phases in (BootPhases.BOTH, BootPhases.LEAVE)

    async def _enter(self) -> TPMPhaseSpec:
        if self._phases is BootPhases.OFF:
            return TPMPhaseSpec(window=TPMWindow.OFF)
        absent = tpm_absent_reason(self._tcti)
        if absent:
            return TPMPhaseSpec(window=TPMWindow.UNAVAILABLE, reason=absent)
        from volumed.keys.tpm import (
            DEFAULT_PCR_PUBLIC_KEY,
            DEFAULT_PCR_SIGNATURE,
            ENTER_MACHINED,
            TPMCommandError,
            TPMUnavailableError,
            UKIFileError,
            UKIFiles,
            enter_signed_phase,
        )

        files = UKIFiles(
            public_key=self._public_key or DEFAULT_PCR_PUBLIC_KEY,
            signature=self._signature or DEFAULT_PCR_SIGNATURE,
        )
        extend = self._phases in (BootPhases.BOTH, BootPhases.ENTER)
        try:
            check = await anyio.to_thread.run_sync(
                lambda: enter_signed_phase(self._tcti, files, extend=extend), abandon_on_cancel=True
            )
        except (UKIFileError, TPMUnavailableError, TPMCommandError) as error:
            return TPMPhaseSpec(window=TPMWindow.UNAVAILABLE, reason=str(error))
        if check.open:
            return TPMPhaseSpec(
                window=TPMWindow.OPEN, phase=ENTER_MACHINED if check.extended else "", pcr11=check.pcr11.hex()
            )
        window = TPMWindow.UNAVAILABLE if not any(check.pcr11) else TPMWindow.CLOSED
        return TPMPhaseSpec(window=window, reason=check.reason, pcr11=check.pcr11.hex())

    async def _leave(self, reason: str) -> None:
        """Close the gate (waiting for key calls in flight), then extend ``start-the-world``."""
        from volumed.keys.tpm import START_THE_WORLD, TPMCommandError, TPMUnavailableError, measure_boot_phase

        await self._gate.close(reason)
        try:
            await anyio.to_thread.run_sync(lambda: measure_boot_phase(START_THE_WORLD, tcti=self._tcti))
        except (TPMUnavailableError, TPMCommandError) as error:
            # The gate stays closed: this run uses no more signed TPM keys, whatever PCR 11 holds.
            log.error("extending PCR 11 with start-the-world failed", error=str(error))
            self._spec = TPMPhaseSpec(window=TPMWindow.CLOSED, reason=f"{reason}; extend failed: {error}")
            return
        self._spec = TPMPhaseSpec(window=TPMWindow.CLOSED, phase=START_THE_WORLD, reason=reason)

    @staticmethod
    def _log_window(spec: TPMPhaseSpec) -> None:
        if spec.window is TPMWindow.OPEN:
            log.info("TPM keys under the signed PCR 11 policy can be used", extended=spec.phase or "nothing")
        elif spec.window is TPMWindow.OFF:
            log.debug("TPM boot phases are off: PCR 11 is left alone")
        elif spec.window is TPMWindow.CLOSED:
            log.info("TPM keys under the signed PCR 11 policy cannot be used", reason=spec.reason)
        else:  # no TPM or no signed UKI: nothing to say on most machines
            log.debug("TPM keys under the signed PCR 11 policy cannot be used", reason=spec.reason)
