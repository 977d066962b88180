"""volumed: a COSI-style reconciliation framework and the encrypted-volume subsystem built on it."""

from __future__ import annotations

__all__ = ["__version__"]


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
