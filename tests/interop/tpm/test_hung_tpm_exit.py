"""A process whose TPM key timed out behind a hung TPM (swtpm stopped with SIGSTOP) still exits.

The timed-out TPM call is abandoned in its thread; that thread must not be joined at interpreter exit, or
`volumed run --once` prints its table and then never ends (nor on SIGTERM).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

from tests._swtpm import Swtpm

if TYPE_CHECKING:
    from pathlib import Path

EXIT_LIMIT = 15.0
"""Seconds the child gets to time out its key (0.5 s) and exit; it hung forever before the fix."""

CHILD = textwrap.dedent(
    """
    import sys

    import anyio

    from volumed.keys import KeyTimeoutError, with_time_limit
    from volumed.keys.tpm import TPMKeyProvider


    async def main() -> None:
        provider = with_time_limit(TPMKeyProvider(1, tcti=sys.argv[1], pcr_only=True), 0.5)
        try:
            await provider.new_key()
        except KeyTimeoutError as error:
            print("timed out:", error, flush=True)


    anyio.run(main)
    """
)


def test_a_process_exits_after_a_tpm_key_timed_out_behind_a_hung_tpm(tmp_path: Path) -> None:
    tpm = Swtpm.start(tmp_path / "tpm")
    os.kill(tpm.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        try:
            result = subprocess.run(
                [sys.executable, "-c", CHILD, tpm.tcti],
                capture_output=True,
                text=True,
                timeout=EXIT_LIMIT,
                check=False,
            )
        except subprocess.TimeoutExpired as hung:
            message = f"no exit within {EXIT_LIMIT:g} s after the TPM key timed out: {hung.stdout!r}"
            raise AssertionError(message) from None
        assert "timed out: tpm key for slot 1: making a new key took longer than 0.5 s" in result.stdout, (
            result.stderr
        )
        assert result.returncode == 0, result.stderr
        assert time.monotonic() - started < EXIT_LIMIT
    finally:
        os.kill(tpm.pid, signal.SIGCONT)
        tpm.stop()
