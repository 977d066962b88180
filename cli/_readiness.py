"""What `volumed run --notify` tells the service manager: a STATUS= line whenever the volumes' progress reads
differently, READY=1 once they have settled (the moment `--once` would exit), failed volumes included: the
process is up and serving then, and the status names what failed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, NoReturn

import anyio
import structlog

from volumed.controllers import convergence
from volumed.resources import (
    BLOCK,
    CONFIG,
    ConfigStatusDefinition,
    KeySlotStatusDefinition,
    MountStatusDefinition,
    VolumeConfigDefinition,
    VolumePhase,
    VolumeStatusDefinition,
)
from volumed.runtime import Kind

if TYPE_CHECKING:
    from volumed.controllers import Convergence
    from volumed.resources import VolumeStatusSpec
    from volumed.runtime import Event, State

    from ._sd_notify import Notifier

SETTLE_POLL: Final = 0.2
"""Seconds between looks while the boot's volumes settle when nothing wakes it sooner (as `wait_settled`)."""
FOLLOW_POLL: Final = 1.0
"""The same once ready: the status follows retries and config changes, not a boot."""
WATCHED: Final = (
    Kind(BLOCK, VolumeConfigDefinition.type),
    Kind(BLOCK, VolumeStatusDefinition.type),
    Kind(BLOCK, MountStatusDefinition.type),
    Kind(BLOCK, KeySlotStatusDefinition.type),
    Kind(CONFIG, ConfigStatusDefinition.type),
)
"""What `convergence` reads: a write to any of them is a reason to look again at once."""
_REASON_MAX: Final = 120

log = structlog.get_logger("volumed.run")


def status_text(snapshot: Convergence) -> str:
    """One line for STATUS=: what is still on its way and why, what failed, is missing or is blocked behind
    either, and what is ready; e.g. ``waiting: EPHEMERAL (waiting for STATE); ready: STATE``."""
    if not snapshot.configured:
        if snapshot.config_errors:
            more = len(snapshot.config_errors) - 1
            return f"no valid config: {snapshot.config_errors[0]}" + (f" (and {more} more)" if more else "")
        return "waiting for the volume configs"
    groups: dict[str, list[str]] = {"waiting": [], "failed": [], "missing": [], "blocked": [], "ready": []}
    blocked = snapshot.blocked
    for volume_id in sorted(snapshot.configured):
        status = snapshot.statuses.get(volume_id)
        if status is None:
            groups["waiting"].append(f"{volume_id} (starting)")
        elif volume_id in blocked:
            groups["blocked"].append(f"{volume_id} (behind {blocked[volume_id]})")
        elif status.phase in (VolumePhase.FAILED, VolumePhase.MISSING):
            reason = _short(status.error_message or status.phase.value)
            groups[status.phase.value].append(f"{volume_id} ({reason})")
        elif status.phase != VolumePhase.READY:
            groups["waiting"].append(f"{volume_id} ({_short(_waiting_reason(status))})")
        elif volume_id in snapshot.wanted_mounts and volume_id not in snapshot.mounted:
            groups["waiting"].append(f"{volume_id} (mounting)")
        elif status.encryption_provider and snapshot.synced.get(volume_id) != status.encryption_failed_syncs:
            groups["waiting"].append(f"{volume_id} (syncing key slots)")
        else:
            groups["ready"].append(volume_id)
    return "; ".join(f"{name}: {', '.join(items)}" for name, items in groups.items() if items)


class _Changes:
    """Woken by every write to a `WATCHED` kind, so the moment the volumes settle is seen at once, not up to a
    poll later (READY=1 is on the boot's critical path); the poll stays as the fallback."""

    def __init__(self, state: State) -> None:
        self._event = anyio.Event()
        self._stops = [state.listen(kind, self._changed) for kind in WATCHED]

    def _changed(self, _event: Event) -> None:
        self._event.set()

    async def wait(self, at_most: float) -> None:
        """Until a write since the last wait (at once when there was one), or ``at_most`` seconds."""
        with anyio.move_on_after(at_most):
            await self._event.wait()
        self._event = anyio.Event()

    def close(self) -> None:
        for stop in self._stops:
            stop()


async def settle_with_status(state: State, notifier: Notifier) -> Convergence:
    """Wait until the volumes have settled (`Convergence.settled`), sending each new status on the way."""
    changes = _Changes(state)
    try:
        last = ""
        while True:
            snapshot = await convergence(state)
            if snapshot.settled:
                return snapshot
            if notifier.enabled and (text := status_text(snapshot)) != last:
                notifier.status(text)
                last = text
            await changes.wait(SETTLE_POLL)
    finally:
        changes.close()


async def announce(state: State, notifier: Notifier) -> NoReturn:
    """A daemon run: READY=1 the first time the volumes settle, then STATUS= whenever it reads differently.

    A READY=1 the socket did not take is sent again at the next look (a full queue), never twice once taken.
    """
    snapshot = await settle_with_status(state, notifier)
    changes = _Changes(state)
    try:
        ready = False
        last = ""
        while True:
            text = status_text(snapshot)
            if not ready:
                ready = notifier.ready(text)
                if ready:
                    log.info("told the service manager: ready", status=text)
            elif text != last:
                notifier.status(text)
            last = text
            await changes.wait(FOLLOW_POLL)
            snapshot = await convergence(state)
    finally:
        changes.close()


def _waiting_reason(status: VolumeStatusSpec) -> str:
    """What a volume on its way waits for (the volumes it names, else its reason), or the phase it is in."""
    if status.phase != VolumePhase.WAITING:
        return status.phase.value
    if status.waiting_for:
        return f"waiting for {', '.join(status.waiting_for)}"
    return status.error_message or "waiting"


def _short(reason: str) -> str:
    return reason if len(reason) <= _REASON_MAX else reason[: _REASON_MAX - 3] + "..."
