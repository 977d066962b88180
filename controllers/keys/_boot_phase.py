"""BootPhaseController: the PCR 11 window in which TPM keys under Talos' signed policy work (Talos'
PCRStatusController).

At start it opens the window (``enter-machined``) if the booted UKI's signatures allow it; once the boot's
volumes are open it closes it (``start-the-world``) for the rest of the boot, after the key calls in flight
have returned. A stop before that closes it too, so nothing started after volumed can unseal those keys.
"""

from __future__ import annotations

import threading
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
    from volumed.keys.tpm import SignedPhaseCheck
    from volumed.runtime.controller import ControllerContext

log = structlog.get_logger("volumed.tpm.phase")

LOCKED: Final = "TPM keys are locked for the rest of this boot: PCR 11 was extended with start-the-world"
CLOSED_REASON: Final = f"{LOCKED} after the boot's volumes opened (reboot to use them again)"
CLOSED_AT_STOP_REASON: Final = f"{LOCKED} when volumed stopped (reboot to use them again)"
ENTER_TIME_LIMIT: Final = 20.0
"""Seconds the look at PCR 11 at start may take (Talos' key handlers get as long); after it, TPM keys under
the signed policy are not used in this run and nothing is extended."""
LEAVE_TIME_LIMIT: Final = 10.0
"""Seconds one try of the ``start-the-world`` extend may take."""
EXTEND_RETRY: Final = 5.0
"""Seconds between tries of a ``start-the-world`` extend that failed."""
ENTER_GRACE: Final = 5.0
"""Seconds a stop waits for a look at PCR 11 still in flight (it may open the window)."""


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
        self._opened_at: bytes | None = None  # PCR 11 while the window is open
        self._closing_reason = ""
        self._extend_pending = False  # the gate is closed, start-the-world not extended yet
        # The look at PCR 11 at start runs in a daemon thread that may outlive a slow TPM's time limit.
        self._abandon = threading.Event()
        self._idle = threading.Event()  # no look at PCR 11 in flight
        self._idle.set()
        self._late: SignedPhaseCheck | None = None  # an enter that opened the window after it was abandoned

    @property
    def window(self) -> TPMWindow | None:
        """The window as last published (None before the first look at PCR 11)."""
        return self._spec.window if self._spec is not None else None

    async def reconcile(self, ctx: ControllerContext) -> None:
        if self._spec is None:
            self._spec = await self._enter()
            self._log_window(self._spec)
        elif self._extend_pending:
            await self._extend_start_the_world(LEAVE_TIME_LIMIT)
        elif self._leaves and self._spec.window is TPMWindow.OPEN and (await convergence(ctx)).volumes_open:
            await self._close(CLOSED_REASON, LEAVE_TIME_LIMIT)
        await ctx.apply(TPMPhaseDefinition.new(TPM_PHASE_ID, self._spec))
        if self._extend_pending:
            ctx.requeue_after(EXTEND_RETRY)

    async def close_at_stop(self) -> None:
        """Close a window this run may still have open (the subsystem stops before its volumes opened).

        Bounded: a hung TPM delays the stop by at most ``ENTER_GRACE + LEAVE_TIME_LIMIT`` seconds.
        """
        if not self._leaves:
            return
        with anyio.CancelScope(shield=True):
            self._abandon.set()  # a look at PCR 11 still in flight extends nothing from now on
            await anyio.to_thread.run_sync(self._idle.wait, ENTER_GRACE)
            if self._late is not None and self._spec is not None and self._spec.window is not TPMWindow.OPEN:
                self._opened_at = self._late.pcr11  # it extended enter-machined after all
                self._spec = TPMPhaseSpec(window=TPMWindow.OPEN, pcr11=self._late.pcr11.hex())
            if self._spec is not None and self._spec.window is TPMWindow.OPEN:
                await self._close(CLOSED_AT_STOP_REASON, LEAVE_TIME_LIMIT)
            elif self._extend_pending:
                await self._extend_start_the_world(LEAVE_TIME_LIMIT)

    @property
    def _leaves(self) -> bool:
        return self._phases in (BootPhases.BOTH, BootPhases.LEAVE)

    async def _enter(self) -> TPMPhaseSpec:
        if self._phases is BootPhases.OFF:
            return TPMPhaseSpec(window=TPMWindow.OFF)
        absent = tpm_absent_reason(self._tcti)
        if absent:
            return TPMPhaseSpec(window=TPMWindow.UNAVAILABLE, reason=absent)
        from volumed.keys import MissingExtraError

        try:
            import volumed.keys.tpm  # noqa: F401  (only to learn whether the extra is installed)
        except MissingExtraError as error:
            return TPMPhaseSpec(window=TPMWindow.UNAVAILABLE, reason=str(error))
        from volumed.keys.tpm import (
            DEFAULT_PCR_PUBLIC_KEY,
            DEFAULT_PCR_SIGNATURE,
            ENTER_MACHINED,
            TPMCommandError,
            TPMUnavailableError,
            UKIFileError,
            UKIFiles,
            enter_signed_phase,
            run_in_daemon_thread,
        )

        files = UKIFiles(
            public_key=self._public_key or DEFAULT_PCR_PUBLIC_KEY,
            signature=self._signature or DEFAULT_PCR_SIGNATURE,
        )
        extend = self._phases in (BootPhases.BOTH, BootPhases.ENTER)

        def look() -> SignedPhaseCheck:
            try:
                check = enter_signed_phase(
                    self._tcti, files, extend=extend, may_extend=lambda: not self._abandon.is_set()
                )
                if self._abandon.is_set() and check.open:
                    self._late = check
                return check
            finally:
                self._idle.set()

        self._idle.clear()
        try:
            with anyio.fail_after(ENTER_TIME_LIMIT):
                check = await run_in_daemon_thread(look, name="volumed-tpm-phase")
        except TimeoutError:
            self._abandon.set()
            return TPMPhaseSpec(
                window=TPMWindow.UNAVAILABLE,
                reason=f"the TPM did not answer within {ENTER_TIME_LIMIT:g} s when volumed looked at PCR 11: "
                "TPM keys under the signed policy are not used in this run",
            )
        except (UKIFileError, TPMUnavailableError, TPMCommandError) as error:
            return TPMPhaseSpec(window=TPMWindow.UNAVAILABLE, reason=str(error))
        if not check.open:
            return TPMPhaseSpec(window=TPMWindow.UNAVAILABLE, reason=check.reason, pcr11=check.pcr11.hex())
        self._opened_at = check.pcr11
        return TPMPhaseSpec(
            window=TPMWindow.OPEN, phase=ENTER_MACHINED if check.extended else "", pcr11=check.pcr11.hex()
        )

    async def _close(self, reason: str, limit: float) -> None:
        """Close the gate (waiting for key calls in flight), then extend ``start-the-world``."""
        await self._gate.close(reason)
        self._closing_reason = reason
        self._extend_pending = True
        await self._extend_start_the_world(limit)

    async def _extend_start_the_world(self, limit: float) -> None:
        """Extend PCR 11 with ``start-the-world`` unless another process moved it; retried while it fails
        (a key call that ran over its time limit may still hold the TPM)."""
        from volumed.keys.tpm import (
            START_THE_WORLD,
            TPMCommandError,
            TPMUnavailableError,
            leave_signed_phase,
            run_in_daemon_thread,
        )

        opened_at = self._opened_at
        assert opened_at is not None
        try:
            with anyio.fail_after(limit):
                value = await run_in_daemon_thread(
                    lambda: leave_signed_phase(self._tcti, opened_at), name="volumed-tpm-phase"
                )
        except TimeoutError:
            error = f"the TPM did not answer within {limit:g} s"
        except (TPMUnavailableError, TPMCommandError) as failure:
            error = str(failure)
        else:
            self._extend_pending = False
            if value is None:
                reason = (
                    "TPM keys under the signed policy are refused for the rest of this run: another process "
                    "moved PCR 11 after volumed opened the window, so volumed left it alone"
                )
                self._spec = TPMPhaseSpec(window=TPMWindow.CLOSED, reason=reason)
            else:
                self._spec = TPMPhaseSpec(
                    window=TPMWindow.CLOSED,
                    phase=START_THE_WORLD,
                    reason=self._closing_reason,
                    pcr11=value.hex(),
                )
            self._log_window(self._spec)
            return
        log.error("extending PCR 11 with start-the-world failed; retrying", error=error)
        self._spec = TPMPhaseSpec(
            window=TPMWindow.CLOSED,
            reason="TPM keys under the signed policy are refused for the rest of this run, but PCR 11 could "
            f"not be extended with start-the-world yet ({error}): retrying",
            pcr11=opened_at.hex(),
        )

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
