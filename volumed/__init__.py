"""volumed: a COSI-style reconciliation framework and the encrypted-volume subsystem built on it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

__all__ = ["__version__"]


class _NoRichForStructlog:
    """Refuses ``rich`` to structlog's own import (its ``dev`` and ``tracebacks`` modules try it eagerly).

    ``import structlog`` otherwise loads rich and pygments whenever they are installed (~0.1 s of CPU at every
    start on a 2-CPU test machine) although volumed renders with plain tracebacks only: rich's
    pretty tracebacks print local variables, which may hold secrets. rich stays importable everywhere else
    (the CLI's tables); only an import of rich made while structlog itself is being imported is refused.
    """

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name == "rich" or name.startswith("rich."):
            structlog = sys.modules.get("structlog")
            spec = getattr(structlog, "__spec__", None)
            if spec is not None and getattr(spec, "_initializing", False):
                raise ModuleNotFoundError("volumed keeps rich out of structlog", name=name)
        return None


if not any(isinstance(finder, _NoRichForStructlog) for finder in sys.meta_path):
    sys.meta_path.insert(0, _NoRichForStructlog())


def __getattr__(name: str) -> str:
    # The version is looked up on first use: importlib.metadata costs ~18 ms, paid by every process that
    # imports volumed (each CLI command, each FUSE server of a volume), nearly all of which never ask.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("volumed")
    except PackageNotFoundError:  # a source tree that was not installed
        value = "0+unknown"
    globals()["__version__"] = value
    return value
