"""mkfs.xfs as Talos runs it (`pkg/makefs/xfs.go`): with ``-n ftype=1``, which overlayfs needs; xfs_db
reads it back from the superblock (not our code)."""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING

from tests._tools import require_tool
from volumed.storage.filesystem import make_filesystem

if TYPE_CHECKING:
    from pathlib import Path


def test_an_xfs_made_by_volumed_has_ftype_1(tmp_path: Path) -> None:
    image = tmp_path / "xfs.img"
    with image.open("wb") as f:
        f.truncate(64 << 20)
    make_filesystem(image, "xfs", label="EPHEMERAL")
    info = subprocess.run(
        [require_tool("xfs_db"), "-r", "-c", "info", str(image)], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"\bftype=1\b", info), info
    assert (
        "EPHEMERAL"
        in subprocess.run(
            [require_tool("xfs_admin"), "-l", str(image)], capture_output=True, text=True, check=True
        ).stdout
    )
