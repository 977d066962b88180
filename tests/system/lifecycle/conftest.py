"""The `node` fixture: fresh disk images per test, and everything torn down afterwards, pass or fail."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.system.lifecycle._node import Node

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    """A node with a system disk (Talos layout) and an empty data disk; cleaned up like a final power-off."""
    created = Node.create(tmp_path)
    try:
        yield created
    finally:
        created.clean_up()
        left = created.leftovers()
        assert not left, f"could not clean up: {left}"
