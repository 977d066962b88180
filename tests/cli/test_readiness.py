"""The STATUS= text of `volumed run --notify` (cli/_readiness.py): what waits and why, what failed, is missing
or blocked, what is ready."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

import anyio

from volumed.cli import _readiness
from volumed.cli._readiness import announce, status_text
from volumed.cli._sd_notify import Notifier
from volumed.controllers import Convergence
from volumed.resources import (
    VolumeConfigDefinition,
    VolumeConfigSpec,
    VolumePhase,
    VolumeStatusDefinition,
    VolumeStatusSpec,
)
from volumed.runtime import in_memory_state

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def _snapshot(statuses: dict[str, VolumeStatusSpec], **kwargs: object) -> Convergence:
    fields: dict[str, object] = {
        "statuses": statuses,
        "configured": set(statuses),
        "mounted": set(statuses),
        "wanted_mounts": set(statuses),
    }
    fields.update(kwargs)
    return Convergence(**fields)  # type: ignore[arg-type]


def test_volumes_on_their_way_say_what_they_wait_for() -> None:
    snapshot = _snapshot(
        {
            "STATE": VolumeStatusSpec(phase=VolumePhase.READY),
            "EPHEMERAL": VolumeStatusSpec(phase=VolumePhase.WAITING, waiting_for=("STATE",)),
            "u-data": VolumeStatusSpec(phase=VolumePhase.PROVISIONED),
            "u-logs": VolumeStatusSpec(phase=VolumePhase.WAITING, error_message="waiting for disk discovery"),
            "u-new": VolumeStatusSpec(phase=VolumePhase.READY),
        },
        mounted={"STATE"},
    )
    assert not snapshot.settled
    assert status_text(snapshot) == (
        "waiting: EPHEMERAL (waiting for STATE), u-data (provisioned), u-logs (waiting for disk discovery), "
        "u-new (mounting); ready: STATE"
    )


def test_a_settled_boot_names_what_failed_is_missing_or_blocked() -> None:
    snapshot = _snapshot(
        {
            "STATE": VolumeStatusSpec(phase=VolumePhase.FAILED, error_message="no key opens it"),
            "EPHEMERAL": VolumeStatusSpec(phase=VolumePhase.READY),
            "u-locked": VolumeStatusSpec(phase=VolumePhase.WAITING, waiting_for=("STATE",)),
            "u-gone": VolumeStatusSpec(phase=VolumePhase.MISSING),
        }
    )
    assert snapshot.settled
    assert status_text(snapshot) == (
        "failed: STATE (no key opens it); missing: u-gone (missing); "
        "blocked: u-locked (behind STATE failed); ready: EPHEMERAL"
    )


def test_every_volume_ready() -> None:
    snapshot = _snapshot({name: VolumeStatusSpec(phase=VolumePhase.READY) for name in ("STATE", "EPHEMERAL")})
    assert snapshot.ok
    assert status_text(snapshot) == "ready: EPHEMERAL, STATE"


def test_unsynced_key_slots_and_no_status_yet_are_on_their_way() -> None:
    snapshot = _snapshot(
        {"STATE": VolumeStatusSpec(phase=VolumePhase.READY, encryption_provider="luks2")},
        configured={"STATE", "EPHEMERAL"},
    )
    assert status_text(snapshot) == "waiting: EPHEMERAL (starting), STATE (syncing key slots)"


def test_before_any_config_and_with_an_invalid_one() -> None:
    assert status_text(_snapshot({})) == "waiting for the volume configs"
    invalid = _snapshot({}, config_errors=("VolumeConfig/STATE: bad", "VolumeConfig/EPHEMERAL: bad"))
    assert invalid.settled
    assert status_text(invalid) == "no valid config: VolumeConfig/STATE: bad (and 1 more)"


def test_a_long_reason_is_shortened() -> None:
    text = status_text(
        _snapshot({"STATE": VolumeStatusSpec(phase=VolumePhase.FAILED, error_message="x" * 500)})
    )
    assert text == f"failed: STATE ({'x' * 117}...)"


async def test_a_daemon_run_is_ready_once_then_follows_the_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STATUS= while on its way, READY=1 (with the status) the first time the volumes settle, a failed volume
    included, then STATUS= only when the text changes: a failed volume that recovers on its retry shows.

    Each look comes from the write that changed things, not from the poll (an hour here): READY=1 came up to
    0.2 s after the volumes settled (0.09 s on average, measured on the fuse backend), on the boot's critical
    path."""
    monkeypatch.setattr(_readiness, "SETTLE_POLL", 3600.0)  # every look below is woken by a write
    monkeypatch.setattr(_readiness, "FOLLOW_POLL", 3600.0)
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(tmp_path / "notify"))
    receiver.settimeout(10)  # a safeguard against a hang
    state = in_memory_state()
    await state.create(
        VolumeConfigDefinition.new("STATE", VolumeConfigSpec(partition_label="STATE")), owner="t"
    )

    async def next_datagram() -> bytes:
        return await anyio.to_thread.run_sync(receiver.recv, 4096)

    notifier = Notifier(os.fsencode(tmp_path / "notify"))
    with receiver:
        async with anyio.create_task_group() as tg:
            tg.start_soon(announce, state, notifier)
            assert await next_datagram() == b"STATUS=waiting: STATE (starting)\n"
            failed = VolumeStatusSpec(phase=VolumePhase.FAILED, error_message="the KMS is down")
            status = await state.create(VolumeStatusDefinition.new("STATE", failed), owner="t")
            assert await next_datagram() == b"READY=1\nSTATUS=failed: STATE (the KMS is down)\n"
            await state.update_with_conflicts(
                status.pointer,
                lambda r: r.with_spec(VolumeStatusSpec(phase=VolumePhase.READY)),
                owner="t",
            )
            assert await next_datagram() == b"STATUS=ready: STATE\n"
            tg.cancel_scope.cancel()
    notifier.close()
