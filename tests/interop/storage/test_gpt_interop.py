"""Our GPTs read by sgdisk, sfdisk and blkid, and theirs read by us (image files, 512-byte sectors)."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import TYPE_CHECKING

from tests._tools import require_tool
from volumed.storage.gpt import (
    LINUX_FILESYSTEM_DATA,
    LINUX_SWAP,
    new_table,
    read_partition_table,
    write_partition_table,
)

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024


def run(*argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True)
    return done.stdout


def sparse(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "disk.img"
    with path.open("wb") as f:
        f.truncate(size)
    return path


def test_our_table_read_by_sgdisk_sfdisk_and_blkid(tmp_path: Path) -> None:
    sgdisk, sfdisk, blkid = require_tool("sgdisk"), require_tool("sfdisk"), require_tool("blkid")
    path = sparse(tmp_path, 64 * MIB)
    table = new_table(64 * MIB)
    table, meta = table.add_partition(size=MIB, name="META")
    table, swap = table.add_partition(size=8 * MIB, name="swap space", type_guid=LINUX_SWAP)
    table, rest = table.add_partition(size=None, name="EPHEMERAL")
    write_partition_table(path, table)

    assert "No problems found" in run(sgdisk, "-v", str(path))
    info = run(sgdisk, "-i", "2", str(path))
    assert "Partition name: 'swap space'" in info
    assert f"Partition unique GUID: {str(swap.unique_guid).upper()}" in info
    assert "Linux swap" in info

    dump = json.loads(run(sfdisk, "--json", str(path)))["partitiontable"]
    assert dump["label"] == "gpt"
    assert uuid.UUID(dump["id"]) == table.disk_guid
    assert (dump["firstlba"], dump["lastlba"]) == (table.first_usable_lba, table.last_usable_lba)
    got = [
        (p["start"], p["size"], p["name"], uuid.UUID(p["type"]), uuid.UUID(p["uuid"]))
        for p in dump["partitions"]
    ]
    want = [(p.first_lba, p.sectors, p.name, p.type_guid, p.unique_guid) for p in (meta, swap, rest)]
    assert got == want

    export = run(blkid, "-p", "-o", "export", str(path))
    assert "PTTYPE=gpt" in export.splitlines()
    assert f"PTUUID={table.disk_guid}" in export.splitlines()


def test_sgdisk_table_read_by_us(tmp_path: Path) -> None:
    sgdisk = require_tool("sgdisk")
    path = sparse(tmp_path, 64 * MIB)
    part_guid = uuid.uuid4()
    disk_guid = uuid.uuid4()
    run(
        sgdisk,
        "-o",
        f"-U={disk_guid}",
        "-n=1:0:+1M", "-c=1:META", "-t=1:8300",
        "-n=2:0:+20M", "-c=2:STATE", f"-u=2:{part_guid}",
        "-n=3:0:0", "-c=3:EPHEMERAL", "-t=3:8200",
        str(path),
    )  # fmt: skip
    table = read_partition_table(path)
    assert table.damage == ()
    assert table.disk_guid == disk_guid
    assert [p.name for p in table.partitions] == ["META", "STATE", "EPHEMERAL"]
    state = table.find("STATE")
    assert state is not None
    assert state.unique_guid == part_guid
    assert state.offset(512) == 2 * MIB
    assert state.size(512) == 20 * MIB
    assert table.partitions[0].type_guid == LINUX_FILESYSTEM_DATA
    assert table.partitions[2].type_guid == LINUX_SWAP


def test_sfdisk_script_read_by_us_and_our_edit_read_back_by_sfdisk(tmp_path: Path) -> None:
    sfdisk = require_tool("sfdisk")
    path = sparse(tmp_path, 32 * MIB)
    script = "label: gpt\nsize=2M, type=L, name=alpha\nsize=4M, type=S, name=beta\n"
    run(sfdisk, "-q", str(path), stdin=script)
    table = read_partition_table(path)
    assert [(p.name, p.size(512)) for p in table.partitions] == [("alpha", 2 * MIB), ("beta", 4 * MIB)]
    table = table.remove_partition(1)
    table, gamma = table.add_partition(size=None, name="gamma")
    write_partition_table(path, table)
    dump = json.loads(run(sfdisk, "--json", str(path)))["partitiontable"]
    names = {p["node"][-1]: p["name"] for p in dump["partitions"]}
    assert names == {"2": "beta", str(gamma.number): "gamma"}


def test_sgdisk_repairs_nothing_after_we_recover_from_the_backup(tmp_path: Path) -> None:
    sgdisk = require_tool("sgdisk")
    path = sparse(tmp_path, 16 * MIB)
    run(sgdisk, "-o", "-n=1:0:+2M", "-c=1:META", str(path))
    with path.open("r+b") as f:  # destroy the primary header and array
        f.seek(512)
        f.write(bytes(33 * 512))
    table = read_partition_table(path)
    assert table.damage
    assert table.damage[0].startswith("primary header at LBA 1")
    assert [p.name for p in table.partitions] == ["META"]
    write_partition_table(path, table)
    assert read_partition_table(path).damage == ()
    assert "No problems found" in run(sgdisk, "-v", str(path))
