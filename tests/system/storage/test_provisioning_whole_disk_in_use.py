"""Provisioning never writes a partition onto a disk used as a whole (review32 F1).

A btrfs mounted on the whole disk (its first 64 KiB are unused, so a GPT fits there) while the kernel lists a
partition of the disk that nothing uses: 430736a opened the disk's node without ``O_EXCL`` whenever the kernel
listed a partition, so the new partition was wiped and written over the mounted btrfs (EIO, ``btrfs check``
errors). Now a mount (or swap) of the disk itself refuses the disk before anything is written.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_tool
from tests.system.storage.test_partition_grow_on_loop_devices import _add_partition, _partitioned_loop
from volumed.controllers.block._provisioning import ProvisioningError, provision_partition
from volumed.resources import DiskSpec, ProvisioningConfigSpec

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024
SIZE = 256 * MIB


def test_a_disk_mounted_as_a_whole_gets_no_partition(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    with image.open("wb") as f:
        f.truncate(SIZE)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with _partitioned_loop(image) as dev:
        subprocess.run(
            [require_tool("mkfs.btrfs"), "-q", "-f", "--mixed", dev], check=True, capture_output=True
        )
        script = "label: gpt\nstart=2048, size=8192, name=archive\n"
        sfdisk = [require_tool("sfdisk"), "-q", "--wipe", "never", dev]
        subprocess.run(sfdisk, input=script, text=True, check=True, capture_output=True)
        _add_partition(dev, 1, MIB, 4 * MIB)  # the kernel lists a partition nothing uses
        subprocess.run([require_tool("mount"), dev, str(mnt)], check=True)
        try:
            data = os.urandom(16 * MIB)
            (mnt / "data").write_bytes(data)
            os.sync()
            spec = ProvisioningConfigSpec(min_size=8 * MIB, max_size=64 * MIB)
            with pytest.raises(ProvisioningError, match=r"held by a mount at .*mnt; nothing was written"):
                provision_partition("u-data", spec, [DiskSpec(dev_path=dev, size=SIZE)])
            with open("/proc/sys/vm/drop_caches", "w") as caches:
                caches.write("3\n")
            assert hashlib.sha256((mnt / "data").read_bytes()).digest() == hashlib.sha256(data).digest()
        finally:
            subprocess.run([require_tool("umount"), str(mnt)], check=False)
        check = subprocess.run([require_tool("btrfs"), "check", dev], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


def test_a_disk_a_loop_device_is_made_over_gets_no_partition(tmp_path: Path) -> None:
    """A loop device over the disk's node at an offset: another program's view of bytes the GPT shows free."""
    image = tmp_path / "disk.img"
    with image.open("wb") as f:
        f.truncate(SIZE)
    losetup = require_tool("losetup")
    with _partitioned_loop(image) as dev:
        script = "label: gpt\nstart=2048, size=8192, name=archive\n"
        subprocess.run(
            [require_tool("sfdisk"), "-q", dev], input=script, text=True, check=True, capture_output=True
        )
        over = [losetup, "-o", str(5 * MIB), "--sizelimit", str(32 * MIB), "--find", "--show", dev]
        other = subprocess.run(over, capture_output=True, text=True, check=True).stdout.strip()
        try:
            data = os.urandom(MIB)
            with open(other, "r+b") as view:
                view.write(data)
                view.flush()
                os.fsync(view.fileno())
            spec = ProvisioningConfigSpec(min_size=8 * MIB, max_size=64 * MIB)
            with pytest.raises(
                ProvisioningError, match=rf"held by the loop device {other}; nothing was written"
            ):
                provision_partition("u-data", spec, [DiskSpec(dev_path=dev, size=SIZE)])
            with open("/proc/sys/vm/drop_caches", "w") as caches:
                caches.write("3\n")
            with open(other, "rb") as view:
                assert view.read(MIB) == data
        finally:
            subprocess.run([losetup, "--detach", other], check=False)
