"""``system_disk`` is the one disk whose META volumed reads, and only the disks a volume's selector picks
can hold it back (hostile review of issue 12: with two disks holding META, STATE was made on one disk keyed
with the other's node UUID; an unrelated disk with an unreadable table kept STATE and EPHEMERAL from being
made)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.controllers.block._provisioning import provision_partition, system_disk_of
from volumed.resources import DiscoveredVolumeSpec, DiskSpec, ProvisioningConfigSpec
from volumed.storage.gpt import new_table, read_partition_table, write_partition_table

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024
SIZE = 64 * MIB
SECTOR = 512
STATE = ProvisioningConfigSpec(disk_selector="system_disk", min_size=8 * MIB, max_size=8 * MIB, wave=-1)


def _disk_with_meta(path: Path) -> DiskSpec:
    with path.open("wb") as f:
        f.truncate(SIZE)
    table, _ = new_table(SIZE).add_partition(size=MIB, name="META")
    write_partition_table(path, table)
    return DiskSpec(dev_path=str(path), size=SIZE, image=True)


def _meta(disk: DiskSpec, error: str = "") -> DiscoveredVolumeSpec:
    return DiscoveredVolumeSpec(
        dev_path=disk.dev_path,
        parent=disk.dev_path,
        offset=MIB,
        size=MIB,
        partition_label="META",
        error=error,
    )


def test_the_system_disk_is_the_first_usable_meta_discovered() -> None:
    a, b = DiskSpec(dev_path="/a.img", size=SIZE), DiskSpec(dev_path="/b.img", size=SIZE)
    assert system_disk_of([_meta(b), _meta(a)]) == "/b.img"  # the order MetaStore reads them in
    assert system_disk_of([_meta(a, error="invalid table"), _meta(b)]) == "/b.img"
    assert system_disk_of([]) is None


def test_with_two_disks_holding_meta_state_goes_where_the_meta_read_is(tmp_path: Path) -> None:
    first = _disk_with_meta(tmp_path / "a.img")  # sorts first by path
    read = _disk_with_meta(tmp_path / "z.img")  # the META MetaStore reads (discovered first)
    system = system_disk_of([_meta(read), _meta(first)])
    region, _ = provision_partition("STATE", STATE, [first, read], system_disk=system)
    assert region.path == read.dev_path
    assert read_partition_table(tmp_path / "a.img").find("STATE") is None


def test_an_unreadable_disk_the_selector_does_not_pick_holds_nothing_back(tmp_path: Path) -> None:
    system = _disk_with_meta(tmp_path / "system.img")
    usb = tmp_path / "usb.img"
    with usb.open("wb") as f:
        f.truncate(SIZE)
    write_partition_table(usb, new_table(SIZE))
    with usb.open("r+b") as f:  # both GPT headers' CRC broken by hand
        for lba in (1, SIZE // SECTOR - 1):
            f.seek(lba * SECTOR + 16)
            f.write(b"\xde\xad\xbe\xef")
    before = usb.read_bytes()
    disks = [DiskSpec(dev_path=str(usb), size=SIZE, image=True), system]
    region, _ = provision_partition("STATE", STATE, disks, system_disk=system.dev_path)
    assert region.path == system.dev_path
    assert usb.read_bytes() == before
