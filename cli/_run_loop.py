"""The body of `volumed run` and `volumed demo`: the subsystem, the API server and signal handling."""

from __future__ import annotations

import signal
import threading
from functools import partial
from typing import TYPE_CHECKING

import anyio
import structlog

from volumed.controllers import Convergence, build_subsystem, convergence, running
from volumed.resources import VolumePhase

from ._readiness import announce, settle_with_status, status_text
from ._sd_notify import Notifier
from .api import serve_api

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from volumed.controllers import Plugin, SubsystemOptions

log = structlog.get_logger("volumed.run")


async def _stop_on_signals(scope: anyio.CancelScope, notifier: Notifier) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for received in signals:
            log.info("stopping", signal=signal.Signals(received).name)
            notifier.stopping()
            scope.cancel()
            return


async def run_subsystem(
    options: SubsystemOptions,
    socket_path: Path | None,
    once: bool,
    settle_timeout: float,
    notifier: Notifier | None = None,
    plugins: Sequence[Plugin] = (),
) -> int:
    """Run until a signal (or, with ``once``, until settled); returns the exit code.

    With a ``notifier`` (`volumed run --notify`), the service manager hears STATUS= while the volumes settle,
    READY=1 once they have (with ``once``: before the exit) and STOPPING=1 when the stop begins.
    """
    notifier = notifier if notifier is not None else Notifier(None)
    subsystem = build_subsystem(options, plugins=plugins)
    snapshot: Convergence | None = None
    async with running(subsystem), anyio.create_task_group() as tg:
        if socket_path is not None:
            serve = partial(serve_api, runtime=subsystem.runtime)  # stats and graph too
            await tg.start(serve, subsystem.state, subsystem.registry, socket_path)
            log.info("API listening", socket=str(socket_path))
        if threading.current_thread() is threading.main_thread():  # elsewhere the embedder cancels us
            tg.start_soon(_stop_on_signals, tg.cancel_scope, notifier)
        log.info("volume subsystem started", controllers=len(subsystem.controllers), backend=options.backend)
        if once:
            with anyio.move_on_after(settle_timeout):
                snapshot = await settle_with_status(subsystem.state, notifier)
                notifier.ready(status_text(snapshot))
            if snapshot is None:
                snapshot = await convergence(subsystem.state)
                log.error("timed out before every volume settled", timeout=settle_timeout)
            print_statuses(snapshot)
            notifier.stopping()
            tg.cancel_scope.cancel()
        elif notifier.enabled:
            await announce(subsystem.state, notifier)
        else:
            await anyio.sleep_forever()
    if snapshot is None:
        return 0
    return once_exit_code(snapshot)


def once_exit_code(snapshot: Convergence) -> int:
    """`--once`: 0 every volume ready; 6 one failed (or waits behind one that failed); 7 none failed but one
    is missing (or waits behind one missing or not configured); 1 not settled in time, or no valid config."""
    from .run import EXIT_VOLUME_FAILED, EXIT_VOLUME_MISSING

    if not snapshot.settled:
        return 1
    if snapshot.ok:
        return 0
    phases = {status.phase for status in snapshot.statuses.values()}
    if VolumePhase.FAILED in phases:
        return EXIT_VOLUME_FAILED
    if VolumePhase.MISSING in phases or snapshot.blocked:
        return EXIT_VOLUME_MISSING
    return 1


def print_statuses(snapshot: Convergence) -> None:
    """The VolumeStatus table (what `volumed get volumestatuses` shows) on stdout, config errors first; then
    one unwrapped line per volume that is not ready: why it failed, or what it waits for (and, when nothing
    more can happen to it, the failed or missing volume it is stuck behind); and a line for each volume whose
    key-slot sync failed (a ready volume too) or that runs without dm-crypt flags its config asks for."""
    from ._columns import column_widths, format_rows

    for error in snapshot.config_errors:
        print(f"config: {error}")
    header = ("ID", "PHASE", "LOCATION", "MOUNT", "FS", "ENCRYPTION", "SLOT", "ERROR / REASON")
    rows = [
        (
            volume_id,
            status.phase.value,
            status.location + (f"@{status.offset}" if status.offset else ""),
            status.mount_location,
            status.filesystem,
            status.encryption_provider or "none",
            "" if status.encryption_slot is None else str(status.encryption_slot),
            status.error_message,
        )
        for volume_id, status in sorted(snapshot.statuses.items())
    ]
    for line in format_rows(header, rows, column_widths(header, rows)):
        print(line)
    blocked = snapshot.blocked
    for volume_id, status in sorted(snapshot.statuses.items()):
        if status.phase != VolumePhase.READY:
            line = f"{volume_id} {status.phase.value}: {status.error_message or 'no reason given'}"
            if volume_id in blocked:
                line += f"; blocked: {blocked[volume_id]}"
            print(line)
        if status.encryption_failed_syncs:  # the volume works; its key slots are not as configured
            failed = "; ".join(status.encryption_failed_syncs)
            print(f"{volume_id} key slots not in line with the config: {failed}")
        if status.encryption_ignored_options:
            print(f"{volume_id} runs without dm-crypt flags: {', '.join(status.encryption_ignored_options)}")
