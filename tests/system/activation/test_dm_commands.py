"""What the dm backend asks of dmsetup, checked with a recording stand-in for dmsetup (this host has no
device-mapper; the QEMU kernel tier runs the real one): the table arrives on stdin naming a logon key, the key
is never on argv, the hex-key table is the fallback, and the image gets an autoclear loop device.
"""

from __future__ import annotations

import json
import os
import stat
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_root
from volumed.storage import loop
from volumed.storage.activation import (
    ActivationConflictError,
    ActivationError,
    DataSegment,
    DmActivator,
    dm_uuid,
)
from volumed.storage.activation import _dm as dm_module

if TYPE_CHECKING:
    from pathlib import Path

KEY = bytes(range(1, 65))

RECORDER = """#!/usr/bin/env python3
import json, os, sys
log = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls.jsonl")
stdin = sys.stdin.read()
with open(log, "a") as out:
    out.write(json.dumps({"argv": sys.argv[1:], "stdin": stdin}) + "\\n")
fail = os.environ.get("FAKE_DMSETUP_FAIL", "")
if sys.argv[1] == "table":
    print(os.environ.get("FAKE_DMSETUP_TABLE", ""))
if sys.argv[1] == "create" and fail and fail in stdin:
    print("device-mapper: reload ioctl failed: Invalid argument", file=sys.stderr)
    sys.exit(1)
"""


@pytest.fixture
def dmsetup(tmp_path: Path) -> Path:
    require_root()
    path = tmp_path / "dmsetup"
    path.write_text(RECORDER)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def calls(dmsetup: Path) -> list[dict[str, object]]:
    log = dmsetup.parent / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.img"
    with path.open("wb") as handle:
        handle.truncate(32 << 20)
    return path


def test_create_with_a_logon_key_on_stdin(dmsetup: Path, image: Path) -> None:
    segment = DataSegment(device=str(image), offset=16 << 20, size=None, sector_size=4096, luks_uuid="aa-bb")
    device = DmActivator(dmsetup=str(dmsetup)).activate("luks2-STATE", segment, KEY)
    assert device == "/dev/mapper/luks2-STATE"
    made = calls(dmsetup)
    create = [call for call in made if call["argv"][0] == "create"]  # type: ignore[index]
    assert len(create) == 1
    assert create[0]["argv"] == [
        "create",
        "luks2-STATE",
        "--uuid",
        "CRYPT-LUKS2-aabb-luks2-STATE",
        "--noudevsync",
    ]
    table = str(create[0]["stdin"])
    assert table.startswith("0 32768 crypt aes-xts-plain64 :64:logon:volumed:luks2-STATE 0 /dev/loop")
    assert table.endswith(" 32768 1 sector_size:4096\n")
    for call in made:
        assert KEY.hex() not in json.dumps(call["argv"])
    assert KEY.hex() not in table
    assert ["mknodes", "luks2-STATE"] in [call["argv"] for call in made]
    assert loop.find_attachments(image) == []  # autoclear: nothing held the loop device, so it went


def test_hex_key_table_is_the_fallback(dmsetup: Path, image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DMSETUP_FAIL", ":logon:")
    segment = DataSegment(device=str(image), offset=0, size=1 << 20, sector_size=512)
    DmActivator(dmsetup=str(dmsetup)).activate("luks2-EPHEMERAL", segment, KEY)
    tables = [str(call["stdin"]) for call in calls(dmsetup) if call["argv"][0] == "create"]  # type: ignore[index]
    assert len(tables) == 2
    assert ":64:logon:volumed:luks2-EPHEMERAL" in tables[0]
    assert tables[1].startswith(f"0 2048 crypt aes-xts-plain64 {KEY.hex()} 0 /dev/loop")


def test_failure_is_reported_without_the_key(
    dmsetup: Path, image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_DMSETUP_FAIL", "crypt")
    segment = DataSegment(device=str(image), offset=0, size=1 << 20, sector_size=512)
    with pytest.raises(ActivationError, match="dmsetup create luks2-X failed: device-mapper: reload") as info:
        DmActivator(dmsetup=str(dmsetup)).activate("luks2-X", segment, KEY)
    assert KEY.hex() not in str(info.value)
    assert loop.find_attachments(image) == []


LUKS_UUID = "0b1e6c2f-7a52-4c36-9a0c-2ab9c5f0e0d1"
NAME = "luks2-EPHEMERAL"
LOOP = "7:9"


@pytest.fixture
def active(tmp_path: Path, image: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A sysfs where NAME is active as dm-0 (our dm UUID for LUKS_UUID) over loop9, attached to ``image``;
    `dmsetup table NAME` says 0x10000 bytes at offset 1 MiB of loop9."""
    sys_block, sys_dev_block = tmp_path / "sys" / "block", tmp_path / "sys" / "dev" / "block"
    (sys_block / "dm-0" / "dm").mkdir(parents=True)
    (sys_block / "dm-0" / "dm" / "name").write_text(f"{NAME}\n")
    (sys_block / "dm-0" / "dm" / "uuid").write_text(f"{dm_uuid(NAME, LUKS_UUID)}\n")
    (sys_block / "dm-0" / "size").write_text("128\n")
    (sys_dev_block / LOOP / "loop").mkdir(parents=True)
    (sys_dev_block / LOOP / "loop" / "backing_file").write_text(f"{image}\n")
    (sys_dev_block / LOOP / "loop" / "offset").write_text("0\n")
    monkeypatch.setattr(dm_module, "SYS_BLOCK", sys_block)
    monkeypatch.setattr(dm_module, "SYS_DEV_BLOCK", sys_dev_block)
    monkeypatch.setenv(
        "FAKE_DMSETUP_TABLE", f"0 128 crypt aes-xts-plain64 - 0 {LOOP} 2048 1 sector_size:4096"
    )
    return sys_block


def active_segment(image: Path | str, **changes: object) -> DataSegment:
    fields: dict[str, object] = {"device": str(image), "offset": 1 << 20, "size": 128 * 512}
    fields |= {"sector_size": 4096, "luks_uuid": LUKS_UUID}
    fields.update(changes)
    return DataSegment(**fields)  # type: ignore[arg-type]


def test_activating_the_same_volume_again_returns_the_active_mapping(
    dmsetup: Path, image: Path, active: Path
) -> None:
    device = DmActivator(dmsetup=str(dmsetup)).activate(NAME, active_segment(image), KEY)
    assert device == f"/dev/mapper/{NAME}"
    assert [call["argv"][0] for call in calls(dmsetup)] == ["table"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"offset": 2 << 20}, f"at offset {1 << 20}, not {'IMAGE'} at offset {2 << 20}"),
        ({"size": 64 * 512}, f"its size is {128 * 512}, not {64 * 512}"),
        ({"luks_uuid": "11111111-2222-3333-4444-555555555555"}, "its dm UUID is 'CRYPT-LUKS2-0b1e6c2f"),
        ({"device": "OTHER"}, f"it maps {LOOP} (loop device of {'IMAGE'}) at offset {1 << 20}, not "),
    ],
    ids=["offset", "size", "uuid", "device"],
)
def test_a_name_active_for_another_volume_is_a_conflict(
    dmsetup: Path,
    image: Path,
    active: Path,
    tmp_path: Path,
    changes: dict[str, object],
    message: str,
) -> None:
    if changes.get("device") == "OTHER":
        other = tmp_path / "other.img"
        other.write_bytes(bytes(4 << 20))
        changes = {"device": str(other)}
    with pytest.raises(ActivationConflictError, match=f"{NAME} is already active for another volume") as info:
        DmActivator(dmsetup=str(dmsetup)).activate(NAME, active_segment(image, **changes), KEY)
    assert message.replace("IMAGE", str(image)) in str(info.value)
    assert [call["argv"][0] for call in calls(dmsetup)] == ["table"]  # type: ignore[index]


def test_a_block_device_source_is_compared_by_major_minor(
    dmsetup: Path, active: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = host_disk()
    rdev = os.stat(disk).st_rdev
    monkeypatch.setenv(
        "FAKE_DMSETUP_TABLE",
        f"0 128 crypt aes-xts-plain64 - 0 {os.major(rdev)}:{os.minor(rdev)} 2048 1 sector_size:4096",
    )
    activator = DmActivator(dmsetup=str(dmsetup))
    assert activator.activate(NAME, active_segment(disk), KEY) == f"/dev/mapper/{NAME}"
    monkeypatch.setenv("FAKE_DMSETUP_TABLE", "0 128 crypt aes-xts-plain64 - 0 254:77 2048 1 sector_size:4096")
    with pytest.raises(ActivationConflictError, match=f"it maps 254:77 at offset {1 << 20}, not {disk} at"):
        activator.activate(NAME, active_segment(disk), KEY)


def host_disk() -> str:
    disk = next(
        (f"/dev/{n}" for n in sorted(os.listdir("/sys/block")) if not n.startswith(("loop", "dm-", "zram"))),
        None,
    )
    assert disk is not None, "no block device on this host"
    return disk


def test_a_partition_is_the_same_bytes_as_its_disk_from_the_partition_start(
    dmsetup: Path, active: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A volume provisioned a moment ago is activated on the disk at the partition's offset; once the kernel
    shows the partition node, the controllers ask for the partition at the segment's offset: same bytes."""
    disk = host_disk()
    rdev = os.stat(disk).st_rdev
    number = f"{os.major(rdev)}:{os.minor(rdev)}"
    devices = tmp_path / "sys" / "devices" / "vdz"
    (devices / "vdz1").mkdir(parents=True)
    (devices / "dev").write_text("254:16\n")
    (devices / "vdz1" / "partition").write_text("1\n")
    (devices / "vdz1" / "start").write_text("2048\n")  # the partition starts 1 MiB into vdz
    sys_dev_block = tmp_path / "sys" / "dev" / "block"
    (sys_dev_block / number).symlink_to(devices / "vdz1")
    (sys_dev_block / "254:16").symlink_to(devices)
    # active: vdz (the whole disk) from 2 MiB, i.e. the partition's first MiB skipped
    monkeypatch.setenv("FAKE_DMSETUP_TABLE", "0 128 crypt aes-xts-plain64 - 0 254:16 4096 1 sector_size:4096")
    activator = DmActivator(dmsetup=str(dmsetup))
    assert activator.activate(NAME, active_segment(disk, offset=1 << 20), KEY) == f"/dev/mapper/{NAME}"
    with pytest.raises(ActivationConflictError, match=f"it maps 254:16 at offset {2 << 20}, not {disk} at"):
        activator.activate(NAME, active_segment(disk, offset=2 << 20), KEY)


def test_deactivate_removes_the_mapper_node_when_udev_does_not(dmsetup: Path, active: Path) -> None:
    DmActivator(dmsetup=str(dmsetup)).deactivate(NAME)
    assert [call["argv"] for call in calls(dmsetup)] == [["remove", NAME], ["mknodes", NAME]]
