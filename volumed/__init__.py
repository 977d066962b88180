"""volumed: a COSI-style reconciliation framework and the encrypted-volume subsystem built on it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("volumed")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = ["__version__"]
