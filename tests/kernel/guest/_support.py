"""What every guest-side scenario shares: its parameters, numbered steps on the console, commands whose output
is logged, results handed to the host, and the exit status the guest's /init reports.

A scenario module ends with ``run_scenario(main)``; ``main(scenario)`` raises on the first failed check. The
console (the harness' serial log) shows each step with its time, each command with its output, and on failure
the traceback. Secrets (passphrases, keys) are never printed: commands get them on stdin.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn, final

if TYPE_CHECKING:
    from collections.abc import Callable

WORK: Final = Path("/run/work")


class ScenarioFailure(Exception):
    """A check of the scenario failed; the message says what was expected and what was found."""


@final
class Scenario:
    """One scenario run in the guest: ``params`` from the host, ``results`` back to it (``result.json``)."""

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        self.name = name
        self.params = params
        self.results: dict[str, Any] = {}
        self._started = time.monotonic()
        self._steps = 0

    def step(self, text: str) -> None:
        """Announce the next step on the console."""
        self._steps += 1
        print(f"[{time.monotonic() - self._started:6.1f} s] step {self._steps}: {text}", flush=True)

    def note(self, text: str) -> None:
        """A line of detail under the current step."""
        print(f"    {text}", flush=True)

    def check(self, condition: object, message: str) -> None:
        """Fail the scenario with ``message`` unless ``condition`` holds."""
        if not condition:
            raise ScenarioFailure(message)

    def run(
        self, *argv: str, stdin: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a command, print it and its output; fail the scenario on a non-zero exit unless ``check`` is
        False. ``stdin`` is for secrets: it is never printed."""
        print(f"    $ {shlex.join(argv)}" + (" <secret on stdin>" if stdin is not None else ""), flush=True)
        result = subprocess.run(argv, input=stdin, capture_output=True, check=False, timeout=300)
        completed = subprocess.CompletedProcess(
            argv,
            result.returncode,
            result.stdout.decode(errors="replace"),
            result.stderr.decode(errors="replace"),
        )
        for line in (completed.stdout + completed.stderr).splitlines():
            print(f"      {line}", flush=True)
        if check and completed.returncode != 0:
            raise ScenarioFailure(f"{shlex.join(argv)} exited with {completed.returncode}")
        return completed

    def record(self, key: str, value: Any) -> None:
        """Add a result for the host; written at once so that a later failure keeps it."""
        self.results[key] = value
        (WORK / "result.json").write_text(json.dumps(self.results, indent=2, sort_keys=True))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started


def run_scenario(main: Callable[[Scenario], None]) -> NoReturn:
    """Load the parameters (``argv[1]``), run ``main`` and exit 0, or 1 with the traceback on the console."""
    name = Path(sys.argv[0]).stem
    params = json.loads(Path(sys.argv[1]).read_text()) if len(sys.argv) > 1 else {}
    scenario = Scenario(name, params)
    print(f"scenario {name}: started (pid {os.getpid()})", flush=True)
    try:
        main(scenario)
    except Exception as exc:
        traceback.print_exc()
        print(f"scenario {name}: FAILED after {scenario.elapsed:.1f} s: {exc}", flush=True)
        scenario.record("error", f"{type(exc).__name__}: {exc}")
        sys.exit(1)
    scenario.record("seconds", round(scenario.elapsed, 2))
    print(f"scenario {name}: passed in {scenario.elapsed:.1f} s", flush=True)
    sys.exit(0)
