"""The `volumed` command line. Each command group lives in its own module and is imported lazily."""

from ._main import main as main
from ._main import volumed as volumed

__all__ = ["main", "volumed"]
