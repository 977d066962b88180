"""Python code run in a fresh interpreter of this venv, optionally as if some packages were not installed.

What a process imports, and what it does when an optional dependency is missing, only shows in a process of
its own: this one has long since imported everything. The packages are hidden by a meta-path finder placed
first, so that importing them (or anything under them) raises ModuleNotFoundError, as on an install without
them; the venv itself is left alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_HIDE = """
import sys

class _Hidden:
    def __init__(self, names):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if any(name == hidden or name.startswith(hidden + ".") for hidden in self.names):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Hidden(HIDDEN))
del _Hidden
"""


def run_python(
    code: str, *, hidden: tuple[str, ...] = (), timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``python -c`` in a new interpreter, with the packages ``hidden`` missing."""
    prologue = _HIDE.replace("HIDDEN", repr(hidden)) if hidden else ""
    return subprocess.run(
        [sys.executable, "-c", prologue + code],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
