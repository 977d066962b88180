"""volumed.cli.api re-exports each public name once, and __all__ lists exactly them."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import volumed.cli.api as api


def test_all_matches_reexports() -> None:
    tree = ast.parse(Path(str(api.__file__)).read_text())
    names = [alias.asname for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names]
    assert len(names) == len(set(names)), "a name is re-exported twice"
    assert sorted(n for n in names if n is not None) == sorted(api.__all__)
    assert all(hasattr(api, name) for name in api.__all__)


def test_public_classes_are_final_or_errors() -> None:
    for name in api.__all__:
        value = getattr(api, name)
        if inspect.isclass(value) and not issubclass(value, Exception):
            assert getattr(value, "__final__", False), f"{name} should be @final"
