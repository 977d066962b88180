"""The harness itself: a failing scenario's status and a hung guest reach pytest with the serial log."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.kernel._guest import KernelMachine


def test_failing_scenario_reports_its_status_and_the_serial_log(
    machine: Callable[..., KernelMachine],
) -> None:
    boot = machine().boot("harness_fail")
    assert boot.exit_code == 3
    assert not boot.timed_out
    assert boot.boot_seconds is not None
    assert boot.boot_seconds < boot.total_seconds
    with pytest.raises(pytest.fail.Exception) as failure:
        boot.check()
    message = str(failure.value)
    assert "kernel guest scenario 'harness_fail' exited with status 3" in message
    assert "harness_fail: failing on purpose with status 3" in message
    assert "volumed-guest: exit 3" in message


def test_hung_guest_is_killed_at_the_time_limit(machine: Callable[..., KernelMachine]) -> None:
    boot = machine().boot("harness_hang", time_limit=30)
    assert boot.timed_out
    assert boot.exit_code is None
    assert 30 <= boot.total_seconds < 60
    with pytest.raises(pytest.fail.Exception) as failure:
        boot.check()
    message = str(failure.value)
    assert "was killed after 30 s (time limit): it hung" in message
    assert "volumed-guest: init started" in message
    assert "killed at the 30 s time limit" in message
