"""grow_volume on a disk image that grew: the partition, the LUKS2 segment (dynamic), the active FUSE mapping
and the filesystem (xfs as EPHEMERAL, ext4 as a user volume) get larger, the files stay; a crash after the
partition step or after the mapping step leaves a volume the next boot opens and finishes growing.

Independent side: cryptsetup formats the volume and dumps its segment, sfdisk/sgdisk read the table,
blockdev sizes the decrypted device, xfs_info/dumpe2fs the filesystem, sha256 the files.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tests._sizes import device_size as _device_size
from tests._sizes import file_digests as _files
from tests._sizes import filesystem_size as _fs_size
from tests._sizes import sfdisk_sizes as _sfdisk_sizes
from tests._tools import require_root, require_tool
from tests.system.storage._loops import loop_device, unmounting
from volumed.controllers.block._encryption import Location, OpenedVolume
from volumed.controllers.block._grow import CRASH_ENV, VolumeGrowth, grow_opened_volume, grow_volume
from volumed.controllers.block._services import OpenVolume, VolumeServices, read_data_segment
from volumed.resources import ProvisioningConfigSpec, VolumeConfigSpec, VolumeStatusSpec
from volumed.storage.activation import FuseActivator
from volumed.storage.filesystem import make_filesystem, mount
from volumed.storage.gpt import PartitionGrowth, read_partition_table
from volumed.storage.luks2 import Luks2Volume

pytestmark = pytest.mark.system

MIB = 1024 * 1024
NAME = "luks2-EPHEMERAL"
PASSPHRASE = b"grow-secret"
NUMBER = 2
DATA_OFFSET = 16 * MIB  # cryptsetup's default LUKS2 data offset


def boot(image: str, runtime_dir: str, fstype: str) -> VolumeGrowth:
    """One boot of the volume: open it where the table says it is, activate it, grow it (as the formatter
    would: mapping first at the size found, then `grow_volume` with the active mapping's resize)."""
    table = read_partition_table(image)
    part = table.partition(NUMBER)
    location = Location(image, part.offset(512), part.size(512))
    with Luks2Volume.open(image, offset=location.offset, size=location.size) as volume:
        key = volume.unlock(PASSPHRASE).material
    activator = FuseActivator(runtime_dir=runtime_dir)
    device = activator.activate(NAME, read_data_segment(location), key)

    def resize(grown: PartitionGrowth) -> tuple[int, int]:
        old = activator.status(NAME).size or 0
        bigger = Location(image, location.offset, grown.new_size)
        return old, activator.resize(NAME, read_data_segment(bigger), key)

    return grow_volume(
        disk=image, partition=NUMBER, max_size=0, device=device, fstype=fstype, resize_mapping=resize
    )


def _shutdown(runtime_dir: Path) -> None:
    FuseActivator(runtime_dir=runtime_dir).release(NAME)


def _make_volume(tmp_path: Path, fstype: str) -> tuple[Path, Path, dict[str, str]]:
    """A 48 MiB image whose partition 2 (2..47 MiB) is LUKS2 (cryptsetup) holding ``fstype`` with files."""
    require_root()
    image = tmp_path / "disk.img"
    with image.open("wb") as f:
        f.truncate(48 * MIB)
    script = "label: gpt\nstart=2048, size=2048, name=META\nstart=4096, size=92160, name=EPHEMERAL\n"
    subprocess.run([require_tool("sfdisk"), "-q", str(image)], input=script, text=True, check=True)
    key_file = tmp_path / "key"
    key_file.write_bytes(PASSPHRASE)
    with loop_device(image, offset=2 * MIB, size=45 * MIB) as dev:
        subprocess.run(
            [require_tool("cryptsetup"), "luksFormat", "--type", "luks2", "--batch-mode",
             "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", str(key_file), dev],
            check=True, capture_output=True,
        )  # fmt: skip
    runtime_dir = tmp_path / "run"
    table = read_partition_table(image)
    part = table.partition(NUMBER)
    location = Location(str(image), part.offset(512), part.size(512))
    with Luks2Volume.open(image, offset=location.offset, size=location.size) as volume:
        key = volume.unlock(PASSPHRASE).material
    activator = FuseActivator(runtime_dir=runtime_dir)
    device = activator.activate(NAME, read_data_segment(location), key)
    make_filesystem(device, fstype, label="EPHEMERAL")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with unmounting(mnt):
        mount(device, mnt)
        for i in range(4):
            (mnt / f"file{i}").write_bytes(os.urandom(MIB + 4096 * i))
        files = _files(mnt)
    _shutdown(runtime_dir)
    return image, runtime_dir, files


def _check_grown(tmp_path: Path, image: Path, runtime_dir: Path, fstype: str, files: dict[str, str]) -> None:
    """The partition fills the grown image, the segment stays dynamic, the mapping and filesystem follow."""
    assert _sfdisk_sizes(image)["EPHEMERAL"] == 93 * MIB  # 2..95 MiB of 96 (the backup GPT ends the disk)
    done = subprocess.run([require_tool("sgdisk"), "-v", str(image)], capture_output=True, text=True)
    assert "No problems found" in done.stdout, done.stdout
    with loop_device(image, offset=2 * MIB, size=93 * MIB) as dev:
        dump = subprocess.run(
            [require_tool("cryptsetup"), "luksDump", dev], capture_output=True, text=True, check=True
        ).stdout
    assert re.search(r"length:\s*\(whole device\)", dump), dump
    device = FuseActivator(runtime_dir=runtime_dir).status(NAME).device
    assert device is not None
    assert _device_size(device) == 93 * MIB - DATA_OFFSET
    assert 93 * MIB - DATA_OFFSET - 8 * MIB < _fs_size(device, fstype) <= 93 * MIB - DATA_OFFSET
    mnt = tmp_path / "mnt"
    with unmounting(mnt):
        mount(device, mnt)
        assert _files(mnt) == files


@pytest.mark.parametrize("fstype", ["xfs", "ext4"])
def test_a_grown_image_grows_partition_segment_mapping_and_filesystem(tmp_path: Path, fstype: str) -> None:
    image, runtime_dir, files = _make_volume(tmp_path, fstype)
    try:
        quiet = boot(str(image), str(runtime_dir), fstype)  # no free space after it: nothing grows
        assert not quiet.grew
        _shutdown(runtime_dir)
        with image.open("r+b") as f:
            f.truncate(96 * MIB)
        growth = boot(str(image), str(runtime_dir), fstype)
        assert (growth.partition.old_size, growth.partition.new_size) == (45 * MIB, 93 * MIB)
        assert growth.mapping == (45 * MIB - DATA_OFFSET, 93 * MIB - DATA_OFFSET)
        assert growth.filesystem.old_size <= 45 * MIB - DATA_OFFSET < growth.filesystem.new_size
        assert growth.describe().startswith("partition 45 MiB -> 93 MiB, mapping 29 MiB -> 77 MiB, ")
        _check_grown(tmp_path, image, runtime_dir, fstype, files)
        again = boot_again(image, runtime_dir, fstype)
        assert not again.grew
    finally:
        _shutdown(runtime_dir)


def boot_again(image: Path, runtime_dir: Path, fstype: str) -> VolumeGrowth:
    _shutdown(runtime_dir)
    return boot(str(image), str(runtime_dir), fstype)


def crash_during_boot(image: Path, runtime_dir: Path, step: str) -> None:
    """`boot` in a child process that ends like kill -9 right after grow step ``step``."""
    code = (
        "import sys; from tests.system.lifecycle.test_grow_volume import boot; "
        "boot(sys.argv[1], sys.argv[2], 'xfs')"
    )
    crashed = subprocess.run(
        [sys.executable, "-c", code, str(image), str(runtime_dir)],
        env={**os.environ, CRASH_ENV: step},
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[3],
    )
    assert crashed.returncode == 137, crashed.stderr


async def open_through_services(services: VolumeServices, image: Path) -> VolumeStatusSpec:
    """Open and activate EPHEMERAL as the formatter does; the status the formatter's grow call gets."""
    part = read_partition_table(image).partition(NUMBER)
    location = Location(str(image), part.offset(512), part.size(512))
    with Luks2Volume.open(image, offset=location.offset, size=location.size) as volume:
        key = volume.unlock(PASSPHRASE)
    device = await services.activate("EPHEMERAL", location, key)
    services.opened["EPHEMERAL"] = OpenVolume(location, OpenedVolume(key, 0, "static"), device, "")
    return VolumeStatusSpec(location=str(image), partition_index=NUMBER, mount_location=device)


@pytest.mark.parametrize("step", ["partition", "mapping"])
def test_a_crash_between_steps_is_finished_by_the_next_boot(tmp_path: Path, step: str) -> None:
    """The process ends like kill -9 right after ``step``; a power cut takes the mapping with it. The next
    boot opens the volume at whatever size the table says and grows what is left."""
    image, runtime_dir, files = _make_volume(tmp_path, "xfs")
    try:
        with image.open("r+b") as f:
            f.truncate(96 * MIB)
        crash_during_boot(image, runtime_dir, step)
        assert _sfdisk_sizes(image)["EPHEMERAL"] == 93 * MIB  # the table was written before the crash
        _shutdown(runtime_dir)  # the power cut
        growth = boot(str(image), str(runtime_dir), "xfs")
        assert not growth.partition.grew
        assert growth.mapping == (93 * MIB - DATA_OFFSET, 93 * MIB - DATA_OFFSET)  # mapped at the new size
        assert growth.filesystem.grew
        _check_grown(tmp_path, image, runtime_dir, "xfs", files)
    finally:
        _shutdown(runtime_dir)


def test_grow_opened_volume_resizes_what_the_formatter_opened(tmp_path: Path) -> None:
    """The formatter's call: a volume opened and activated through VolumeServices grows up to its maxSize,
    and its opened location takes the new size (the next reconcile finds the volume it opened)."""
    image, runtime_dir, _ = _make_volume(tmp_path, "xfs")
    with image.open("r+b") as f:
        f.truncate(96 * MIB)
    services = VolumeServices(backend="fuse", root=tmp_path, runtime_dir=runtime_dir)
    config = VolumeConfigSpec(
        partition_label="EPHEMERAL",
        provisioning=ProvisioningConfigSpec(grow=True, max_size=60 * MIB),
        filesystem="xfs",
    )

    async def main() -> tuple[VolumeGrowth | None, Location, VolumeGrowth | None]:
        try:
            status = await open_through_services(services, image)
            growth = await grow_opened_volume(services, "EPHEMERAL", config, status)
            opened_at = services.opened["EPHEMERAL"].location
            unchanged = await grow_opened_volume(services, "EPHEMERAL", config, status)
            return growth, opened_at, unchanged
        finally:
            await services.close_all()

    growth, opened_at, unchanged = anyio.run(main)
    assert growth is not None
    assert unchanged is not None
    assert (growth.partition.new_size, growth.mapping) == (60 * MIB, (29 * MIB, 44 * MIB))
    assert growth.filesystem.new_size == 44 * MIB == _fs_size_after(image, runtime_dir)
    assert opened_at == Location(str(image), 2 * MIB, 60 * MIB)
    assert not unchanged.grew
    assert _sfdisk_sizes(image)["EPHEMERAL"] == 60 * MIB
    fixed = VolumeConfigSpec(partition_label="EPHEMERAL", provisioning=ProvisioningConfigSpec(grow=False))
    assert anyio.run(grow_opened_volume, services, "EPHEMERAL", fixed, VolumeStatusSpec()) is None


def _fs_size_after(image: Path, runtime_dir: Path) -> int:
    """The filesystem's size, read by xfs_info on a fresh activation of the grown volume."""
    part = read_partition_table(image).partition(NUMBER)
    location = Location(str(image), part.offset(512), part.size(512))
    with Luks2Volume.open(image, offset=location.offset, size=location.size) as volume:
        key = volume.unlock(PASSPHRASE).material
    activator = FuseActivator(runtime_dir=runtime_dir)
    try:
        return _fs_size(activator.activate(NAME, read_data_segment(location), key), "xfs")
    finally:
        _shutdown(runtime_dir)
