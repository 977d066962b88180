"""`volumed run --once` prints, after its table, a line for a ready volume whose key-slot sync failed and for
one running without the dm-crypt flags its config asks for (a failed TPM reseal showed a ready volume with an
empty reason column; the sync's error was only in the log)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.cli._run_loop import print_statuses
from volumed.controllers import Convergence
from volumed.resources import VolumePhase, VolumeStatusSpec

if TYPE_CHECKING:
    import pytest


def test_failed_syncs_and_ignored_flags_of_ready_volumes_are_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    statuses = {
        "u-data": VolumeStatusSpec(
            phase=VolumePhase.READY,
            encryption_provider="luks2",
            encryption_failed_syncs=("error updating key slot 1 tpm: PCR 9 is all zeroes",),
            encryption_ignored_options=("allow_discards", "no_read_workqueue"),
        ),
        "EPHEMERAL": VolumeStatusSpec(phase=VolumePhase.READY),
    }
    print_statuses(
        Convergence(statuses=statuses, configured=set(statuses), mounted=set(), wanted_mounts=set())
    )
    lines = capsys.readouterr().out.splitlines()
    assert (
        "u-data key slots not in line with the config: error updating key slot 1 tpm: PCR 9 is all zeroes"
        in lines
    )
    assert "u-data runs without dm-crypt flags: allow_discards, no_read_workqueue" in lines
    assert not [line for line in lines if line.startswith("EPHEMERAL ") and ":" in line]


def test_brackets_and_escapes_in_a_reason_are_printed_as_they_are(capsys: pytest.CaptureFixture[str]) -> None:
    """rich read table cells as console markup: "[/var]" stopped `--once` with a MarkupError after the volumes
    settled, "[tpm]" vanished, and an escape sequence from a reason reached the terminal."""
    reason = "mount [/var] failed: [tpm] key \x1b[2J"
    statuses = {"u-data": VolumeStatusSpec(phase=VolumePhase.FAILED, error_message=reason)}
    print_statuses(
        Convergence(statuses=statuses, configured=set(statuses), mounted=set(), wanted_mounts=set())
    )
    header, row, *_ = capsys.readouterr().out.splitlines()
    assert header.split()[:2] == ["ID", "PHASE"]
    assert row.startswith("u-data  failed")
    assert row[header.index("ERROR / REASON") :] == "mount [/var] failed: [tpm] key \\x1b[2J"
