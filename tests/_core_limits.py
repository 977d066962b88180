"""Core limits of real processes: start a child with one, read what the child left of it."""

from __future__ import annotations

import resource
from pathlib import Path


def unlimited_core() -> None:
    """Give this process (or, as a preexec_fn, the child) a core limit, as after `ulimit -c unlimited`:
    the command under test must drop it."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):  # not root: as much as the hard limit allows
        hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


def core_limit(pid: int) -> list[str]:
    """The soft and hard core limits of process ``pid`` as /proc shows them."""
    limits = Path(f"/proc/{pid}/limits").read_text()
    line = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    return line.split()[4:6]
