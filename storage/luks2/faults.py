"""Crash points for tests: end the process like ``kill -9`` right after the N-th write of a named operation.

A crash window (a header commit, a key change) is tested by stopping the process after its 1st, 2nd, ...
write and checking what a later open finds, instead of sleeping and hoping to land in the window.

Armed only by the environment variable ``VOLUMED_LUKS2_CRASH_AFTER_WRITE`` set to ``OPERATION:N`` when the
process starts (e.g. ``key-slot-sync:7``): inside a ``crash_scope(OPERATION)``, the N-th write through a LUKS2
region is flushed to the file and then the process ends at once with ``os._exit(137)`` (no cleanup, no
fsync: what the kernel keeps of a process killed by SIGKILL). ``N`` = 0 ends it when the scope is entered.
Writes are counted per scope (from 0 each time the scope is entered), only in the task or thread that
entered it and the worker threads it starts (a context variable), so concurrent work is not counted. A scope
that ends before its armed write prints ``VOLUMED_LUKS2_CRASH_AFTER_WRITE: OPERATION ended after K writes``
on stderr: the test then knows it has crashed the operation at every one of its writes.
Unset (always, outside tests), the hooks do nothing.

Operations that open a scope: ``key-change`` (``Luks2Volume.enrol_key``, ``change_key``),
``key-slot-sync`` (one key-slot sync of one volume by the controllers), and ``format`` (``format_regions``).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, BinaryIO, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

ENV: Final = "VOLUMED_LUKS2_CRASH_AFTER_WRITE"
EXIT_CODE: Final = 137  # as for SIGKILL


def _armed() -> tuple[str, int] | None:
    value = os.environ.get(ENV, "")
    name, _, count = value.rpartition(":")
    if not name or not count.isdigit():
        return None
    return name, int(count)


_ARMED: Final = _armed()
_counter: ContextVar[list[int] | None] = ContextVar("volumed_luks2_crash_counter", default=None)


@contextmanager
def crash_scope(operation: str) -> Iterator[None]:
    """Count the writes made inside this block when ``operation`` is the armed one (else: nothing)."""
    if _ARMED is None or _ARMED[0] != operation:
        yield
        return
    if _ARMED[1] == 0:
        os._exit(EXIT_CODE)
    counter = [0]
    token = _counter.set(counter)
    try:
        yield
    finally:
        _counter.reset(token)
        # The armed write was never reached: say how many there were, so a test knows it saw them all.
        os.write(2, f"{ENV}: {operation} ended after {counter[0]} writes\n".encode())


def after_write(file: BinaryIO) -> None:
    """Called after every write to a LUKS2 region: ends the process at the armed write."""
    counter = _counter.get()
    if counter is None or _ARMED is None:
        return
    counter[0] += 1
    if counter[0] == _ARMED[1]:
        file.flush()
        os._exit(EXIT_CODE)
