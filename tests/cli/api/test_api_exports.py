"""volumed.cli.api re-exports each public name once, and __all__ lists exactly them."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import volumed.cli.api as api


def test_all_matches_reexports() -> None:
    """Eager re-exports and the lazy ones (declared under TYPE_CHECKING for the type checker) together."""
    tree = ast.parse(Path(str(api.__file__)).read_text())
    nodes = [*tree.body, *(n for node in tree.body if isinstance(node, ast.If) for n in node.body)]
    names = [alias.asname for node in nodes if isinstance(node, ast.ImportFrom) for alias in node.names]
    assert len(names) == len(set(names)), "a name is re-exported twice"
    assert sorted(n for n in names if n is not None) == sorted(api.__all__)
    assert all(hasattr(api, name) for name in api.__all__)


def test_public_classes_are_final_or_errors() -> None:
    for name in api.__all__:
        value = getattr(api, name)
        if inspect.isclass(value) and not issubclass(value, Exception):
            assert getattr(value, "__final__", False), f"{name} should be @final"


def test_lazy_names_match_the_type_checking_imports() -> None:
    tree = ast.parse(Path(str(api.__file__)).read_text())
    lazy = [
        alias.asname
        for node in tree.body
        if isinstance(node, ast.If)
        for imported in node.body
        if isinstance(imported, ast.ImportFrom)
        for alias in imported.names
    ]
    assert sorted(n for n in lazy if n is not None) == sorted(api._LAZY)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        _ = api.nothing  # type: ignore[attr-defined]


def test_the_client_side_does_not_load_the_runtime() -> None:
    """`volumed get` starts fast: the client, renderer and constants need neither the runtime nor pydantic."""
    code = (
        "import sys; import volumed.cli.get, volumed.cli.api as a; a.ApiClient; a.WatchPrinter; "
        "print(sorted(m for m in ('volumed.runtime', 'pydantic', 'anyio') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == "[]\n"
