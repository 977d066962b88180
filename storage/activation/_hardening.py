"""Keep key material out of core dumps: a process that holds a volume key is made non-dumpable."""

from __future__ import annotations

import ctypes
import resource
from typing import Final

PR_SET_DUMPABLE: Final = 4
PR_GET_DUMPABLE: Final = 3

# The process' own symbols, libc's among them: ctypes.util.find_library("c") runs `ldconfig -p` (a
# subprocess) at every import.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.prctl.restype = ctypes.c_int


def forbid_core_dumps() -> None:
    """No core file, no ptrace by other users for this process: ``PR_SET_DUMPABLE 0`` and ``RLIMIT_CORE 0``.

    A forced core of a process holding a volume key (``volumed run``, a FUSE server) holds the whole XTS key.
    ``PR_SET_DUMPABLE`` is reset by ``execve``, so each such program calls this itself; the core limit is
    inherited by the tools it starts.

    Raises:
        OSError: prctl refused (it does not for this option on Linux).
    """
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, "prctl(PR_SET_DUMPABLE, 0) failed")


def is_dumpable() -> bool:
    """Whether this process may dump core (``PR_GET_DUMPABLE``)."""
    return bool(_libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))


__all__ = ["forbid_core_dumps", "is_dumpable"]
