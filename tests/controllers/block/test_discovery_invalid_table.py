"""A disk whose GPT is invalid (overlapping partitions, a volume label twice): its partitions are listed with
the reason and no location, nothing on it is probed or written; the node's other disks are unaffected. The
same tables are refused by provisioning and `volumed wipe`, which write nothing."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from tests.storage.gpt._craft import edit_gpt, entry, read_entries, set_entry
from volumed.cli.wipe import wipe
from volumed.controllers.block._discovery import Discovery, discover, image_disk_id, scan_block_devices
from volumed.controllers.block._provisioning import ProvisioningError, provision_partition
from volumed.resources import DiskSpec, ProvisioningConfigSpec
from volumed.storage import disklayout
from volumed.storage.gpt import InvalidTableError, new_table, write_partition_table

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

MIB = 1024 * 1024


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def overlapping(path: Path) -> Path:
    """A Talos-layout image whose EPHEMERAL starts 100 sectors into STATE."""
    disklayout.create_disk_image(path, 256 * MIB)
    state_first, _ = entry(read_entries(path), 2)
    edit_gpt(path, lambda a: set_entry(a, 3, first=state_first + 100))
    return path


def two_states(path: Path) -> Path:
    """A Talos-layout image whose third partition is labelled STATE too."""
    disklayout.create_disk_image(path, 256 * MIB)
    edit_gpt(path, lambda a: set_entry(a, 3, name="STATE"))
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (
            overlapping,
            r"GPT partitions 3 \(EPHEMERAL, LBA 4196\.\.522239\) and 2 \(STATE, LBA 4096\.\.208895\)",
        ),
        (
            two_states,
            r"GPT partitions 2 \(LBA 4096\.\.208895\) and 3 \(LBA 208896\.\.522239\) are both labelled ",
        ),
    ],
)
def test_an_invalid_table_lists_its_partitions_unlocated_and_spares_the_other_disks(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    bad = make(tmp_path / "bad.img")
    good = tmp_path / "good.img"
    disklayout.create_disk_image(good, 256 * MIB)
    before = digest(bad)

    found = discover([str(bad), str(good)])

    bad_id = image_disk_id(str(bad))
    assert bad_id in found.disks
    assert list(found.invalid) == [str(bad)]
    assert found.invalid[str(bad)].startswith(f"disk {bad}: ")
    on_bad = [v for v in found.volumes.values() if v.parent == str(bad) or v.dev_path == str(bad)]
    assert sorted(v.partition_index for v in on_bad) == [1, 2, 3]
    for volume in on_bad:
        assert volume.error == found.invalid[str(bad)]
        assert (volume.size, volume.offset, volume.name) == (0, 0, "")  # not located, not probed
    assert re.search(reason, on_bad[0].error)
    on_good = [v for v in found.volumes.values() if v.dev_path == str(good) and v.partition_label]
    assert sorted(v.partition_label for v in on_good) == ["EPHEMERAL", "META", "STATE"]
    assert all(not v.error and v.size for v in on_good)
    assert digest(bad) == before


def test_two_user_volume_labels_are_ambiguous_too(tmp_path: Path) -> None:
    path = tmp_path / "data.img"
    with path.open("wb") as f:
        f.truncate(64 * MIB)
    table, _ = new_table(64 * MIB).add_partition(size=8 * MIB, name="u-data")
    table, _ = table.add_partition(size=8 * MIB, name="Linux filesystem")
    table, _ = table.add_partition(size=8 * MIB, name="Linux filesystem")
    write_partition_table(path, table)
    assert disklayout.read_volume_table(path) == table  # other duplicate names are nobody's business
    edit_gpt(path, lambda a: set_entry(a, 2, name="u-data"))
    with pytest.raises(InvalidTableError, match="are both labelled u-data: which is u-data is ambiguous"):
        disklayout.read_volume_table(path)


def test_block_devices_with_an_invalid_table_are_not_probed(tmp_path: Path) -> None:
    """The kernel makes partitions of a GPT whose entries overlap: discovery checks the table itself."""
    dev = tmp_path / "dev"
    dev.mkdir()
    image = overlapping(dev / "vda")
    sysfs = tmp_path / "sys"
    disk = sysfs / "devices" / "virtual" / "block" / "vda"
    for name, text in {"size": str(256 * MIB // 512), "ro": "0"}.items():
        (disk / name).parent.mkdir(parents=True, exist_ok=True)
        (disk / name).write_text(text + "\n")
    table_entries = read_entries(image)
    for n, label in enumerate(("META", "STATE", "EPHEMERAL"), start=1):
        first, last = entry(table_entries, n)
        part = disk / f"vda{n}"
        part.mkdir()
        (part / "partition").write_text(f"{n}\n")
        (part / "start").write_text(f"{first}\n")
        (part / "size").write_text(f"{last - first + 1}\n")
        (part / "uevent").write_text(f"DEVNAME=vda{n}\nDEVTYPE=partition\nPARTN={n}\nPARTNAME={label}\n")
    (sysfs / "block").mkdir()
    (sysfs / "block" / "vda").symlink_to(disk)

    result = Discovery()
    scan_block_devices(result, sysfs=str(sysfs), dev_root=str(dev))

    assert "overlap" in result.invalid[str(image)]
    assert sorted(result.volumes) == ["vda1", "vda2", "vda3"]
    for volume in result.volumes.values():
        assert volume.error == result.invalid[str(image)]
        assert volume.size == 0
    assert result.volumes["vda2"].partition_label == "STATE"


def test_provisioning_adds_no_partition_to_an_invalid_table(tmp_path: Path) -> None:
    disk = tmp_path / "data.img"
    with disk.open("wb") as f:
        f.truncate(128 * MIB)
    table, _ = new_table(128 * MIB).add_partition(size=8 * MIB, name="u-old")
    table, _ = table.add_partition(size=8 * MIB, name="u-other")
    write_partition_table(disk, table)
    edit_gpt(disk, lambda a: set_entry(a, 2, first=entry(a, 1)[1]))
    before = digest(disk)
    spec = DiskSpec(dev_path=str(disk), size=128 * MIB, image=True)
    with pytest.raises(ProvisioningError, match=rf"{disk}: GPT partitions 2 \(u-other.*overlap"):
        provision_partition("u-new", ProvisioningConfigSpec(min_size=MIB, grow=True), [spec])
    assert digest(disk) == before


@pytest.mark.parametrize("make", [overlapping, two_states])
def test_wipe_refuses_an_invalid_table_and_writes_nothing(
    tmp_path: Path, make: Callable[[Path], Path]
) -> None:
    image = make(tmp_path / "disk.img")
    before = digest(image)
    result = CliRunner().invoke(wipe, [str(image), "--system-labels-to-wipe", "STATE", "--yes"])
    assert result.exit_code == 4, result.output
    assert f"Error: disk {image}: GPT partitions" in result.output
    assert digest(image) == before
    with pytest.raises(InvalidTableError):
        disklayout.wipe_system_partitions(image, ["STATE"])
    assert digest(image) == before
