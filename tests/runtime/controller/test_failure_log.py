"""A failed reconcile is logged by the exception's type and message, never its repr.

A UnicodeEncodeError's repr holds the whole string it failed on: a static passphrase with a lone surrogate
was logged every second as ``error="UnicodeEncodeError('utf-8', '<passphrase>', ...)"``.
"""

from __future__ import annotations

import io

import anyio
import structlog

from volumed.runtime.controller import BackoffPolicy, Controller, ControllerContext
from volumed.runtime.testing import run_runtime

SECRET = "S3cr3tXq"
FAST = BackoffPolicy(initial=0.01, multiplier=2.0, jitter=0.0, maximum=0.05)


class EncodesASecret(Controller):
    name = "EncodesASecret"

    def __init__(self) -> None:
        self.failures = 0
        self.failed_twice = anyio.Event()

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.failures += 1
        if self.failures == 2:
            self.failed_twice.set()
        (SECRET + "\ud800").encode()


async def test_a_unicode_error_is_logged_without_the_string_it_failed_on() -> None:
    ctl = EncodesASecret()
    output = io.StringIO()
    structlog.configure(
        processors=[structlog.dev.ConsoleRenderer(colors=False)],
        logger_factory=structlog.PrintLoggerFactory(output),
    )
    try:
        with structlog.testing.capture_logs() as logs:
            async with run_runtime(ctl, backoff=FAST):
                await ctl.failed_twice.wait()
        rendered = EncodesASecret()
        async with run_runtime(rendered, backoff=FAST):  # rendered as `volumed run` prints it
            await rendered.failed_twice.wait()
    finally:
        structlog.reset_defaults()
    failures = [e for e in logs if e["event"] == "reconcile failed"]
    assert failures
    assert failures[0]["error"].startswith("UnicodeEncodeError: 'utf-8' codec can't encode character")
    assert all(SECRET not in str(value) for e in failures for value in e.values())
    text = output.getvalue()
    assert "reconcile failed" in text
    assert "UnicodeEncodeError" in text
    assert SECRET not in text
