"""The persistent state backend: one sqlite file, crash-safe through transactions."""

from ._core import SqliteCore as SqliteCore

__all__ = ["SqliteCore"]
