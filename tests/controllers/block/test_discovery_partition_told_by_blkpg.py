"""A partition the kernel was told of by BLKPG (added while another partition of its disk was in use) has no
name in sysfs (no ``PARTNAME`` in its uevent): discovery takes its label from the disk's GPT, where
provisioning wrote it. In the kernel tier a swap volume whose partition was added so was never found
('waiting for the kernel to show partition 3 of /dev/vdb' for ever)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.controllers.block._discovery import Discovery, scan_block_devices
from volumed.storage.gpt import new_table, write_partition_table

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024


def fake_node(tmp_path: Path, kernel: list[tuple[int, int, int, str | None]]) -> tuple[Path, Path]:
    """A disk ``vdb`` (a GPT image under a fake /dev) and a fake sysfs holding the kernel's partitions
    ``(number, start sector, sectors, PARTNAME or None)``."""
    dev = tmp_path / "dev"
    dev.mkdir()
    image = dev / "vdb"
    with image.open("wb") as f:
        f.truncate(64 * MIB)
    table, _ = new_table(64 * MIB).add_partition(size=16 * MIB, name="archive")
    table, _ = table.add_partition(size=8 * MIB, name="s-swap")
    write_partition_table(image, table)
    disk = tmp_path / "sys" / "devices" / "virtual" / "block" / "vdb"
    disk.mkdir(parents=True)
    (disk / "size").write_text(f"{64 * MIB // 512}\n")
    (disk / "ro").write_text("0\n")
    for number, start, sectors, name in kernel:
        part = disk / f"vdb{number}"
        part.mkdir()
        (part / "partition").write_text(f"{number}\n")
        (part / "start").write_text(f"{start}\n")
        (part / "size").write_text(f"{sectors}\n")
        named = f"PARTNAME={name}\n" if name is not None else ""
        (part / "uevent").write_text(f"DEVNAME=vdb{number}\nDEVTYPE=partition\nPARTN={number}\n{named}")
    (tmp_path / "sys" / "block").mkdir()
    (tmp_path / "sys" / "block" / "vdb").symlink_to(disk)
    return tmp_path / "sys", dev


def test_a_partition_without_partname_is_labelled_from_the_gpt(tmp_path: Path) -> None:
    sysfs, dev = fake_node(tmp_path, [(1, 2048, 32768, "archive"), (2, 34816, 16384, None)])
    result = Discovery()
    scan_block_devices(result, sysfs=str(sysfs), dev_root=str(dev))
    labels = {name: volume.partition_label for name, volume in result.volumes.items()}
    assert labels == {"vdb1": "archive", "vdb2": "s-swap"}


def test_a_gpt_entry_elsewhere_than_the_kernels_partition_names_nothing(tmp_path: Path) -> None:
    """The kernel's partition 2 starts where the GPT's does not: not the GPT's partition 2, no label."""
    sysfs, dev = fake_node(tmp_path, [(1, 2048, 32768, "archive"), (2, 36864, 8192, None)])
    result = Discovery()
    scan_block_devices(result, sysfs=str(sysfs), dev_root=str(dev))
    assert result.volumes["vdb2"].partition_label == ""


def test_a_gpt_entry_of_another_size_than_the_kernels_partition_names_nothing(tmp_path: Path) -> None:
    """The kernel's partition 2 starts where the GPT's does but is larger (its entry was removed or made
    smaller while it was in use, and another written there): not the GPT's partition, no label (review31
    F1b, F7: somebody's mounted partition was labelled as the new volume, or a volume given a node running
    into free space)."""
    sysfs, dev = fake_node(tmp_path, [(1, 2048, 32768, "archive"), (2, 34816, 32768, None)])
    result = Discovery()
    scan_block_devices(result, sysfs=str(sysfs), dev_root=str(dev))
    volume = result.volumes["vdb2"]
    assert (volume.partition_label, volume.partition_uuid, volume.partition_type) == ("", "", "")
