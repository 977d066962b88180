"""The in-memory state backend (the default)."""

from ._core import InMemoryCore as InMemoryCore

__all__ = ["InMemoryCore"]
