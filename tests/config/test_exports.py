"""The package re-exports each public name once, and __all__ lists exactly them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import volumed.config
import volumed.storage.meta

PACKAGES = [volumed.config, volumed.storage.meta]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda package: package.__name__)
def test_all_matches_reexports(package: object) -> None:
    path = Path(str(getattr(package, "__file__", "")))
    tree = ast.parse(path.read_text())
    # eager re-exports and the lazy ones (declared under TYPE_CHECKING for the type checker) together
    nodes = [*tree.body, *(n for node in tree.body if isinstance(node, ast.If) for n in node.body)]
    names = [
        alias.asname
        for node in nodes
        if isinstance(node, ast.ImportFrom) and node.module != "volumed._lazy"
        for alias in node.names
    ]
    assert len(names) == len(set(names)), "a name is re-exported twice"
    assert sorted(names) == sorted(getattr(package, "__all__", []))
    for name in names:
        assert name is not None
        assert hasattr(package, name)
