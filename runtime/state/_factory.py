"""Ready-made states."""

from __future__ import annotations

from ._index import DEFAULT_HISTORY
from ._wrap import WrappedState
from .inmem import InMemoryCore


def in_memory_state(*, history: int = DEFAULT_HISTORY) -> WrappedState:
    """A full `State` on a fresh in-memory backend (the default for runtimes and tests)."""
    return WrappedState(InMemoryCore(history=history))
