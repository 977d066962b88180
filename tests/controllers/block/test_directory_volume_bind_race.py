"""A directory volume's bind mount lands on the directory walked inside EPHEMERAL, even when a symbolic link
is swapped into its path between the walk and the mount (review32 F3: mount(8) was given the path, walked it
again and bind mounted a directory outside EPHEMERAL; a racer renaming /var/mnt won in 26 s). The swap is
made deterministic here: it happens in the look at the target's mounts, which comes between the two."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import volumed.controllers.block._directory as directory
from tests._tools import require_root, require_tool
from volumed.storage.filesystem import find_mount

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_a_link_swapped_in_after_the_walk_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_root()
    ephemeral, outside = tmp_path / "var", tmp_path / "outside"
    (ephemeral / "mnt").mkdir(parents=True)
    (outside / "cache").mkdir(parents=True)
    target = ephemeral / "mnt" / "cache"
    looked = find_mount

    def swap_then_look(path: str | os.PathLike[str]) -> object:
        os.rename(ephemeral / "mnt", ephemeral / "walked")
        os.symlink(outside, ephemeral / "mnt")
        return looked(path)

    monkeypatch.setattr(directory, "find_mount", swap_then_look)
    try:
        assert directory.mount_directory(target, ephemeral)
        assert find_mount(outside / "cache") is None  # nothing mounted outside EPHEMERAL
        assert find_mount(ephemeral / "walked" / "cache") is not None  # the directory that was walked
    finally:
        for where in (outside / "cache", ephemeral / "walked" / "cache"):
            subprocess.run([require_tool("umount"), str(where)], check=False, capture_output=True)
