"""Package attributes imported on first use (PEP 562), for exports whose modules are costly to import.

A process that needs one light part of a package (a volume's FUSE server needs the XTS payload, not the KDFs
or the device-mapper code) then does not pay for importing the rest: each FUSE server starts per volume at
boot, and each CLI command is a process of its own.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


def lazy_attributes(package: str, modules: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package``: each name of ``modules`` comes from the (relative) module
    it maps to, imported when the name is first used; the value is then kept on the package."""

    def __getattr__(name: str) -> object:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
