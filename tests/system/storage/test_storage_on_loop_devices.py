"""The storage libraries on real loop devices (root): discovery, GPT, mkfs, mount, grow, busy wipe."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from tests._tools import require_tool
from tests.system.storage._loops import blkid, loop_device, unmounting
from volumed.cli import volumed
from volumed.storage import disklayout
from volumed.storage.blockdev import (
    Region,
    device_size,
    is_block_device,
    logical_sector_size,
    read_block_device,
)
from volumed.storage.filesystem import (
    MountConflictError,
    find_mount,
    grow_filesystem,
    is_mounted,
    make_filesystem,
    mount,
    mounts_of_device,
    umount,
)
from volumed.storage.gpt import new_table, read_partition_table, write_partition_table
from volumed.storage.probe import SignatureType, probe_path

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024


def test_talos_disk_discovery_mkfs_mount_and_busy_wipe(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    table = disklayout.create_disk_image(image, 512 * MIB)
    state = table.find("STATE")
    ephemeral = table.find("EPHEMERAL")
    assert state is not None
    assert ephemeral is not None
    mnt = tmp_path / "state"
    mnt.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    with (
        loop_device(image) as disk,
        loop_device(image, offset=state.offset(512), size=state.size(512)) as state_dev,
        loop_device(image, offset=ephemeral.offset(512), size=ephemeral.size(512)) as eph_dev,
        unmounting(mnt),
    ):
        # discovery: sysfs and ioctls agree with the image
        assert is_block_device(disk)
        assert device_size(disk) == 512 * MIB
        assert logical_sector_size(disk) == 512
        info = read_block_device(os.path.basename(disk))
        assert (info.size, info.backing_file, info.transport) == (512 * MIB, str(image), None)
        part_info = read_block_device(os.path.basename(state_dev))
        assert (part_info.backing_offset, part_info.backing_size_limit) == (2 * MIB, 100 * MIB)
        assert read_partition_table(disk) == table

        # empty partitions probe as empty; after mkfs they probe as what blkid says
        assert probe_path(state_dev) is None
        make_filesystem(state_dev, "xfs", label="STATE")
        make_filesystem(eph_dev, "ext4", label="EPHEMERAL")
        state_sig, eph_sig = probe_path(state_dev), probe_path(eph_dev)
        assert state_sig is not None
        assert eph_sig is not None
        assert (state_sig.type, state_sig.label) == (SignatureType.XFS, "STATE")
        assert (eph_sig.type, eph_sig.label) == (SignatureType.EXT4, "EPHEMERAL")
        assert blkid(state_dev)["UUID"] == state_sig.uuid

        # discovery through the whole-disk device sees what was written through the partition devices
        volumes = disklayout.discover_volumes(disk)
        found_types = [(v.partition_label, v.signature.type if v.signature else None) for v in volumes]
        assert found_types == [
            (None, SignatureType.GPT),
            ("META", None),
            ("STATE", SignatureType.XFS),
            ("EPHEMERAL", SignatureType.EXT4),
        ]
        assert volumes[2].region == Region(disk, 2 * MIB, 100 * MIB)

        # mount, idempotent re-mount, conflict, write
        assert mount(state_dev, mnt, fstype="xfs", options=["noatime"]) is True
        assert mount(state_dev, mnt) is False
        with pytest.raises(MountConflictError, match=f"already a mount point of {state_dev}"):
            mount(eph_dev, mnt)
        found = find_mount(mnt)
        assert found is not None
        assert (found.fstype, found.source) == ("xfs", state_dev)
        assert "noatime" in found.options
        assert [m.target for m in mounts_of_device(state_dev)] == [str(mnt)]
        (mnt / "hello.txt").write_text("persisted")
        grow_filesystem(state_dev, "xfs", mountpoint=str(mnt))  # already full size: a no-op

        # wiping a partition mounted through another loop device is refused, nothing changes
        result = CliRunner().invoke(
            volumed, ["wipe", disk, "--yes", "--system-labels-to-wipe", "EPHEMERAL", "STATE"]
        )
        assert result.exit_code == 5, result.output
        assert result.output == f"Error: partition STATE is in use through {state_dev}\n"
        eph_after = probe_path(eph_dev)
        assert eph_after is not None
        assert eph_after.type is SignatureType.EXT4

        assert umount(mnt) is True
        assert umount(mnt) is False
        assert not is_mounted(mnt)
        mount(state_dev, other)
        assert (other / "hello.txt").read_text() == "persisted"
        umount(other)

        # unmounted: the wipe goes through the whole-disk device and leaves META and the table alone
        result = CliRunner().invoke(
            volumed, ["wipe", disk, "--yes", "--system-labels-to-wipe", "STATE", "EPHEMERAL"]
        )
        assert result.exit_code == 0, result.output
        assert result.output == (
            "wiped STATE (partition 2, 100 MiB): xfs\nwiped EPHEMERAL (partition 3, 409 MiB): ext4\n"
        )
        subprocess.run([require_tool("blockdev"), "--flushbufs", state_dev, eph_dev], check=True)
        assert blkid(state_dev) == {}
        assert blkid(eph_dev) == {}
        assert read_partition_table(disk) == table


@pytest.mark.parametrize("fstype", ["xfs", "ext4"])
def test_grow_after_the_disk_grows(tmp_path: Path, fstype: str) -> None:
    image = tmp_path / "grow.img"
    table = new_table(64 * MIB)
    table, _ = table.add_partition(size=MIB, name="META")
    table, data = table.add_partition(size=None, name="EPHEMERAL")
    with image.open("wb") as f:
        f.truncate(64 * MIB)
    write_partition_table(image, table)
    with loop_device(image, offset=data.offset(512), size=data.size(512)) as dev:
        make_filesystem(dev, fstype, label="data")
    with image.open("r+b") as f:
        f.truncate(128 * MIB)
    grown_table, grown = read_partition_table(image).resized(128 * MIB).grow_last_partition()
    write_partition_table(image, grown_table)
    assert grown.size(512) == 125 * MIB  # 2 MiB .. 127 MiB: the end stays MiB-aligned
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with loop_device(image, offset=grown.offset(512), size=grown.size(512)) as dev, unmounting(mnt):
        if fstype == "ext4":
            grow_filesystem(dev, fstype)  # offline: resize2fs on the unmounted device
            mount(dev, mnt)
        else:
            mount(dev, mnt)
            grow_filesystem(dev, fstype, mountpoint=str(mnt))  # xfs grows only while mounted
        st = os.statvfs(mnt)
        assert st.f_blocks * st.f_frsize > 100 * MIB
    assert (
        "No problems found"
        in subprocess.run(
            [require_tool("sgdisk"), "-v", str(image)], capture_output=True, text=True, check=True
        ).stdout
    )


def test_gpt_on_a_4096_byte_sector_device_both_ways(tmp_path: Path) -> None:
    image = tmp_path / "4k.img"
    with image.open("wb") as f:
        f.truncate(64 * MIB)
    with loop_device(image, sector_size=4096) as dev:
        assert logical_sector_size(dev) == 4096
        table = new_table(64 * MIB, sector_size=4096)
        table, meta = table.add_partition(size=MIB, name="META")
        table, _ = table.add_partition(size=None, name="STATE")
        write_partition_table(dev, table)
        assert read_partition_table(dev) == table
        assert meta.first_lba == 256
        out = subprocess.run(
            [require_tool("sgdisk"), "-p", dev], capture_output=True, text=True, check=True
        ).stdout
        assert "Sector size (logical/physical): 4096/4096 bytes" in out
        assert "   1             256             511   1024.0 KiB  8300  META" in out
        assert blkid(dev)["PTTYPE"] == "gpt"

        subprocess.run(
            [require_tool("sgdisk"), "-o", "-n=1:0:+2M", "-c=1:theirs", dev], capture_output=True, check=True
        )
        theirs = read_partition_table(dev)
        assert theirs.sector_size == 4096
        assert [(p.name, p.size(4096)) for p in theirs.partitions] == [("theirs", 2 * MIB)]
    # the same bytes as a plain image file: the sector size is found from where the header is
    assert read_partition_table(image).partitions == theirs.partitions


def test_lvm2_physical_volume_probes_and_wipes(tmp_path: Path) -> None:
    image = tmp_path / "pv.img"
    with image.open("wb") as f:
        f.truncate(16 * MIB)
    lvm_config = "devices { use_devicesfile=0 obtain_device_list_from_udev=0 }"
    env = {**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1"}
    with loop_device(image) as dev:
        subprocess.run(
            [require_tool("pvcreate"), "-q", "-ff", "-y", "--config", lvm_config, dev],
            capture_output=True,
            check=True,
            env=env,
        )
        sig = probe_path(dev)
        assert sig is not None
        assert sig.type is SignatureType.LVM2
        seen = blkid(dev)
        assert (seen["TYPE"], seen["UUID"]) == ("LVM2_member", sig.uuid)
        from volumed.storage.blockdev import Region
        from volumed.storage.probe import wipe_region

        assert [s.type for s in wipe_region(Region.whole(dev))] == [SignatureType.LVM2]
        subprocess.run([require_tool("blockdev"), "--flushbufs", dev], check=True)
        assert blkid(dev) == {}
