"""Core limits of real processes: start a child with one, read what the child left of it.

Children are started with `prlimit`, never a ``preexec_fn``: the pytest process runs gRPC threads, and a
forked child that runs Python before exec can deadlock on a lock one of them held (CI hung 600 s so).
"""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


def unlimited_core() -> None:
    """Give this process a core limit, as after `ulimit -c unlimited`: the command under test must drop it."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):  # not root: as much as the hard limit allows
        hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


def spawn_with_core_limit(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` with an unlimited core limit set by `prlimit` (no Python between fork and exec)."""
    return subprocess.Popen(
        ["prlimit", "--core=unlimited", "--", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@contextmanager
def fifo_writer(fifo: Path, process: subprocess.Popen[bytes], timeout: float = 60.0) -> Iterator[BinaryIO]:
    """Open ``fifo`` for writing once ``process`` has opened it for reading; fail (never hang) if it exits
    first or does not open it within ``timeout`` seconds. The process is killed on failure."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as error:
            if error.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"the command exited with {process.returncode} before opening the FIFO: {err!r}")
        if time.monotonic() > deadline:
            process.kill()
            _, err = process.communicate()
            pytest.fail(f"the command did not open the FIFO within {timeout} s: {err!r}")
        time.sleep(0.02)
    os.set_blocking(fd, True)
    with os.fdopen(fd, "wb") as writer:
        yield writer


def core_limit(pid: int) -> list[str]:
    """The soft and hard core limits of process ``pid`` as /proc shows them."""
    limits = Path(f"/proc/{pid}/limits").read_text()
    line = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    return line.split()[4:6]
