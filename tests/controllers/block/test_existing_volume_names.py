"""``volume.name`` in an existing volume's selector reads as in Talos v1.12: go-blockdevice's ext probe names
every ext2/3/4 superblock ``extfs`` (blkid/internal/filesystems/ext/ext.go: ``func (p *Probe) Name() string
{ return "extfs" }``), so Talos' own selectors say ``volume.name == "extfs"``; the other names are the
probe's."""

from __future__ import annotations

import pytest

from volumed.config import compile_volume_selector
from volumed.controllers.block._existing import volume_description
from volumed.resources import DiscoveredVolumeSpec


@pytest.mark.parametrize("probed", ["ext2", "ext3", "ext4"])
def test_an_ext_filesystem_is_extfs_to_a_selector(probed: str) -> None:
    volume = volume_description(
        DiscoveredVolumeSpec(dev_path="/dev/sdb1", parent="/dev/sdb", size=1 << 30, name=probed)
    )
    assert compile_volume_selector('volume.name == "extfs"').matches(volume, None)
    assert not compile_volume_selector(f'volume.name == "{probed}"').matches(volume, None)


@pytest.mark.parametrize("probed", ["xfs", "vfat", "swap", "luks", ""])
def test_other_names_are_as_probed(probed: str) -> None:
    volume = volume_description(
        DiscoveredVolumeSpec(dev_path="/dev/sdb1", parent="/dev/sdb", size=1 << 30, name=probed)
    )
    assert compile_volume_selector(f'volume.name == "{probed}"').matches(volume, None)
