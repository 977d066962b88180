"""Leftover FUSE views whose filesystems are mounted one below the other are all released by one stop
(review51 F4).

`release_leftover_views` released them in name order: EPHEMERAL's view (mounted at /var) came before u-data's
(mounted at /var/mnt/data, below it), so /var was busy, EPHEMERAL's view and loop device stayed, and the next
start failed EPHEMERAL again; it took a second stop to clean up.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import TYPE_CHECKING

from tests._tools import require_root, require_tool
from volumed.controllers._subsystem import release_leftover_views
from volumed.storage import loop
from volumed.storage.activation import DataSegment, FuseActivator
from volumed.storage.filesystem import find_mount

if TYPE_CHECKING:
    from pathlib import Path

MiB = 1 << 20
NAMES = ("luks2-EPHEMERAL", "luks2-u-data")  # name order: the parent first


def test_one_release_takes_a_view_mounted_below_another(tmp_path: Path) -> None:
    require_root()
    require_tool("mkfs.ext4")
    runtime = tmp_path / "run"
    activator = FuseActivator(runtime_dir=runtime)
    parent, child = tmp_path / "root/var", tmp_path / "root/var/mnt/data"
    targets = {NAMES[0]: parent, NAMES[1]: child}
    try:
        for name in NAMES:
            image = tmp_path / f"{name}.img"
            with image.open("wb") as handle:
                handle.truncate(16 * MiB)
            segment = DataSegment(device=str(image), offset=0, size=None, sector_size=4096)
            device = activator.activate(name, segment, os.urandom(64))
            subprocess.run(["mkfs.ext4", "-q", "-F", device], check=True, capture_output=True)
            targets[name].mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", device, str(targets[name])], check=True)

        release_leftover_views(runtime)  # what the stop does with views no volume of the run took over

        assert find_mount(child) is None
        assert find_mount(parent) is None
        assert activator.leftovers() == []
        attached = [d.path for d in loop.list_loop_devices() if d.backing_file.endswith(NAMES)]
        assert attached == []
    finally:
        for target in (child, parent):
            subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)
        for name in NAMES:
            with contextlib.suppress(Exception):
                activator.deactivate(name)
