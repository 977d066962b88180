"""On a node's block devices the DiscoveredVolume of a partition carries its GPT unique GUID and type GUID, as
Talos' (``volume.partition_uuid``, ``volume.partition_type`` in selectors): sysfs holds neither, so discovery
reads them from the disk's table. They were empty, and a selector on either matched nothing on a real disk.
The table is written by sfdisk and its GUIDs read back with ``sfdisk --json``: not our GPT code on both
sides."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

from tests._tools import require_tool
from volumed.controllers.block._discovery import Discovery, scan_block_devices

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024
SWAP_TYPE = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"


def test_block_device_partitions_carry_their_gpt_guids(tmp_path: Path) -> None:
    sfdisk = require_tool("sfdisk")
    dev = tmp_path / "dev"
    dev.mkdir()
    image = dev / "vdb"
    with image.open("wb") as f:
        f.truncate(64 * MIB)
    script = f"label: gpt\nsize=16MiB, name=archive\nsize=8MiB, name=s-swap, type={SWAP_TYPE}\n"
    subprocess.run([sfdisk, "-q", str(image)], input=script, text=True, check=True, capture_output=True)
    table = json.loads(
        subprocess.run([sfdisk, "--json", str(image)], capture_output=True, text=True, check=True).stdout
    )
    made = table["partitiontable"]["partitions"]
    disk = tmp_path / "sys" / "devices" / "virtual" / "block" / "vdb"
    disk.mkdir(parents=True)
    (disk / "size").write_text(f"{64 * MIB // 512}\n")
    (disk / "ro").write_text("0\n")
    for number, entry in enumerate(made, start=1):
        part = disk / f"vdb{number}"
        part.mkdir()
        (part / "partition").write_text(f"{number}\n")
        (part / "start").write_text(f"{entry['start']}\n")
        (part / "size").write_text(f"{entry['size']}\n")
        (part / "uevent").write_text(
            f"DEVNAME=vdb{number}\nDEVTYPE=partition\nPARTN={number}\nPARTNAME={entry['name']}\n"
        )
    (tmp_path / "sys" / "block").mkdir()
    (tmp_path / "sys" / "block" / "vdb").symlink_to(disk)

    result = Discovery()
    scan_block_devices(result, sysfs=str(tmp_path / "sys"), dev_root=str(dev))
    found = {
        name: (volume.partition_label, volume.partition_uuid, volume.partition_type)
        for name, volume in result.volumes.items()
    }
    assert found == {
        f"vdb{number}": (entry["name"], entry["uuid"].lower(), entry["type"].lower())
        for number, entry in enumerate(made, start=1)
    }
    assert found["vdb2"][2] == SWAP_TYPE.lower()
