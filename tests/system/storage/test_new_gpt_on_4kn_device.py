"""A blank 4Kn block device gets a GPT of 4096-byte sectors even when its Disk says 512 (review of issue 12:
`--disk /dev/loopN` of a 4Kn loop device failed its volume with "unexpected error: ValueError: ... has
4096-byte sectors, the table 512-byte ones"). Independent side: sgdisk reads the result."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_root, require_tool
from tests.system.storage._loops import loop_device
from volumed.controllers.block._provisioning import provision_partition
from volumed.resources import DiskSpec, ProvisioningConfigSpec

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.system

MIB = 1024 * 1024


def test_a_blank_4kn_device_gets_a_4096_byte_sector_gpt(tmp_path: Path) -> None:
    require_root()
    image = tmp_path / "4kn.img"
    with image.open("wb") as f:
        f.truncate(64 * MIB)
    with loop_device(image, sector_size=4096) as dev:
        disk = DiskSpec(dev_path=dev, size=64 * MIB, sector_size=512)  # what a scan of --disk assumed
        spec = ProvisioningConfigSpec(disk_selector="true", max_size=16 * MIB)
        region, number = provision_partition("u-data", spec, [disk])
        assert (region.size, number) == (16 * MIB, 1)
        shown = subprocess.run(
            [require_tool("sgdisk"), "-p", dev], capture_output=True, text=True, check=True
        ).stdout
    assert "Sector size (logical/physical): 4096/4096 bytes" in shown, shown
    assert "u-data" in shown, shown
