"""A partition volumed provisions on a reused disk is provably blank: its sample points are zeroed.

The blank check reads the first and last MiB and 64 KiB at every power-of-two MiB (review item 2); a new
partition on a disk that held data there would otherwise never be formatted.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from volumed.controllers.block._provisioning import provision_partition
from volumed.resources import DiskSpec, ProvisioningConfigSpec
from volumed.storage.blockdev import Region
from volumed.storage.gpt import new_table, write_partition_table
from volumed.storage.probe import ContentKind, blank_sample_ranges, examine_region

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024
SIZE = 128 * MIB


def test_a_partition_provisioned_on_a_reused_disk_is_blank(tmp_path: Path) -> None:
    data = tmp_path / "data.img"
    with data.open("wb") as f:
        f.write(os.urandom(SIZE))  # an old disk: every byte is somebody's
    write_partition_table(data, new_table(SIZE))
    spec = ProvisioningConfigSpec(disk_selector="true", grow=True)
    region, _ = provision_partition("u-data", spec, [DiskSpec(dev_path=str(data), size=SIZE, image=True)])
    assert region.size > 64 * MIB
    content = examine_region(Region(region.path, region.offset, region.size))
    assert content.kind is ContentKind.BLANK, content.describe()
    with data.open("rb") as f:  # and only the sample points were zeroed: data between them stays
        end = max(o + n for o, n in blank_sample_ranges(region.size))
        assert end == region.size
        f.seek(region.offset + 3 * MIB)
        assert any(f.read(4096))
