"""An unreadable GPT (both copies damaged, CRCs right) read through a real block device: the disk is
reported as damaged with the reason, and nothing is written."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest

from tests.controllers.block.test_discovery_unreadable_table import break_both_headers
from tests.system.storage._loops import loop_device
from volumed.controllers.block._discovery import _check_table
from volumed.storage import disklayout

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "reason"), [(12, "<I", 600, "header size 600"), (80, "<I", 0, "entry count 0")]
)
def test_an_unreadable_table_on_a_block_device(
    tmp_path: Path, offset: int, fmt: str, value: int, reason: str
) -> None:
    image = tmp_path / "disk.img"
    disklayout.create_disk_image(image, 256 * MIB)
    break_both_headers(image, offset, fmt, value)
    before = hashlib.sha256(image.read_bytes()).hexdigest()
    with loop_device(image) as dev:
        error, damaged = _check_table(dev)
        assert damaged
        assert error.startswith(f"{dev}: both GPT copies are damaged: ")
        assert reason in error
    assert hashlib.sha256(image.read_bytes()).hexdigest() == before
