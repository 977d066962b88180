"""A directory volume's path is walked from EPHEMERAL's mount point one component at a time, never through a
symbolic link (review30 F6): with /var/mnt (or /var/mnt/<name>) replaced by a link to a directory outside
EPHEMERAL, the volume fails naming the link, nothing is made or bind mounted outside; once the link is gone
the volume is made inside EPHEMERAL. Talos follows such a link (docs/configuration.md says where volumed
differs). Before the fix the directory was made and bind mounted in the link's target."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

import pytest

from tests.system.lifecycle._node import volume_config
from tests.system.lifecycle.test_directory_volume import DIRECTORY
from volumed.resources import VolumePhase
from volumed.storage.filesystem import find_mount, read_mounts

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node


@pytest.mark.parametrize("planted", ["var/mnt", "var/mnt/cache"])
async def test_a_symlink_in_the_path_is_refused_not_followed(node: Node, planted: str) -> None:
    outside = node.workdir / "outside"
    outside.mkdir()
    system = (volume_config("STATE"), volume_config("EPHEMERAL"))
    node.write_config(*system)
    async with node.boot() as boot:
        link = node.root / planted
        if planted == "var/mnt":
            shutil.rmtree(link, ignore_errors=True)
        else:
            link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(outside)
        node.write_config(*system, DIRECTORY)
        snapshot = await boot.wait_for(
            lambda s: "u-cache" in s.statuses and s.statuses["u-cache"].phase == VolumePhase.FAILED,
            what="u-cache failed",
        )
        message = snapshot.statuses["u-cache"].error_message
        assert "symbolic link" in message, message
        assert str(link) in message, message
        assert os.listdir(outside) == []  # nothing made outside EPHEMERAL
        assert not [m for m in read_mounts() if m.target.startswith(str(outside))]
        link.unlink()
        if planted == "var/mnt":
            link.mkdir()
        await boot.wait_for(lambda s: "u-cache" in s.mounted, what="u-cache mounted once the link is gone")
        target = node.target("u-cache")
        assert os.stat(target).st_dev == os.stat(node.target("EPHEMERAL")).st_dev
        bind = find_mount(target)
        assert bind is not None
        assert bind.root == "/mnt/cache"
    assert os.listdir(outside) == []
