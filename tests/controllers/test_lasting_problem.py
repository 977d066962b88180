"""LastingProblem warns once per problem: a retry that fails the same way on another loop device (the first
free one differs when other programs attach loops in between) is the same problem, not a new warning
(test_mount_failure failed now and then under load for this)."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from volumed.controllers._lasting_problem import LastingProblem

MOUNT_ERROR = (
    "mount failed with exit status 32: wrong fs type, bad superblock on /dev/loop{}, or other error."
)


def test_the_same_error_on_another_loop_device_is_warned_once() -> None:
    problem = LastingProblem()
    logger = structlog.get_logger("test")
    with capture_logs() as logs:
        problem.report(logger, "cannot mount data (retrying)", MOUNT_ERROR.format(47))
        problem.report(logger, "cannot mount data (retrying)", MOUNT_ERROR.format(48))
        problem.report(logger, "cannot mount data (retrying)", MOUNT_ERROR.format(47))
    assert [r["error"] for r in logs] == [MOUNT_ERROR.format(47)]


def test_another_error_is_warned_again() -> None:
    problem = LastingProblem()
    logger = structlog.get_logger("test")
    with capture_logs() as logs:
        problem.report(logger, "cannot mount data (retrying)", MOUNT_ERROR.format(47))
        problem.report(logger, "cannot mount data (retrying)", "mount failed: /dev/loop47 is read-only")
        assert problem.clear()
        problem.report(logger, "cannot mount data (retrying)", "mount failed: /dev/loop47 is read-only")
    assert len(logs) == 3
