"""forbid_core_dumps: a process holding a volume key is not dumpable and has no core limit left."""

from __future__ import annotations

import subprocess
import sys


def test_forbid_core_dumps_makes_the_process_non_dumpable_with_no_core_limit() -> None:
    probe = (
        "import resource; from volumed.storage.activation import forbid_core_dumps, is_dumpable; "
        "print(is_dumpable(), resource.getrlimit(resource.RLIMIT_CORE)); forbid_core_dumps(); "
        "print(is_dumpable(), resource.getrlimit(resource.RLIMIT_CORE))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    before, after = result.stdout.splitlines()
    assert before.startswith("True")
    assert after == "False (0, 0)"
