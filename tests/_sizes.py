"""Sizes as the real tools see them (the independent side of grow and provisioning tests): partitions by
sfdisk, filesystems by xfs_info / dumpe2fs, devices by blockdev, and files by their sha256."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from typing import TYPE_CHECKING

from tests._tools import require_tool

if TYPE_CHECKING:
    from pathlib import Path


def sfdisk_sizes(image: Path) -> dict[str, int]:
    """Partition name -> size in bytes, from `sfdisk --json` (512-byte sectors)."""
    out = subprocess.run(
        [require_tool("sfdisk"), "--json", str(image)], capture_output=True, text=True, check=True
    ).stdout
    return {p["name"]: p["size"] * 512 for p in json.loads(out)["partitiontable"]["partitions"]}


def filesystem_size(device: str, fstype: str) -> int:
    """The data size of the xfs (`xfs_info`) or ext4 (`dumpe2fs -h`) on ``device``."""
    if fstype == "xfs":
        out = subprocess.run([require_tool("xfs_info"), device], capture_output=True, text=True).stdout
        found = re.search(r"^data\s*=\s*bsize=(\d+)\s+blocks=(\d+)", out, re.MULTILINE)
        assert found is not None, out
        return int(found.group(1)) * int(found.group(2))
    out = subprocess.run(
        [require_tool("dumpe2fs"), "-h", device], capture_output=True, text=True, check=True
    ).stdout
    fields = dict(re.findall(r"^(Block count|Block size):\s*(\d+)", out, re.MULTILINE))
    return int(fields["Block count"]) * int(fields["Block size"])


def device_size(device: str) -> int:
    """`blockdev --getsize64` of ``device``."""
    out = subprocess.run(
        [require_tool("blockdev"), "--getsize64", device], capture_output=True, text=True, check=True
    ).stdout
    return int(out)


def file_digests(root: Path) -> dict[str, str]:
    """sha256 of each regular file directly in ``root``, by name."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir()) if p.is_file()}
