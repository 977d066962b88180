"""A failed mkfs names what went wrong in a line or two, not the tool's whole usage text (review30 F7):
mkfs.xfs follows its error with some thirty lines of "Usage: mkfs.xfs ...", which landed in the
VolumeStatus' error. The real tools are run on images too small for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests._tools import require_tool
from volumed.storage.filesystem import ToolError, make_filesystem

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("fstype", "size", "says"),
    [
        ("xfs", 4 << 20, "too small"),
        ("ext4", 16 << 10, "Not enough space"),
        ("swap", 16 << 10, "at least"),
    ],
)
def test_a_failed_mkfs_is_reported_without_its_usage_text(
    tmp_path: Path, fstype: str, size: int, says: str
) -> None:
    require_tool({"xfs": "mkfs.xfs", "ext4": "mkfs.ext4", "swap": "mkswap"}[fstype])
    image = tmp_path / "tiny.img"
    with image.open("wb") as f:
        f.truncate(size)
    with pytest.raises(ToolError) as raised:
        make_filesystem(image, fstype)
    message = str(raised.value)
    assert says in message, message
    assert "Usage" not in message, message
    assert message.count("\n") <= 2, message
    assert raised.value.returncode != 0
