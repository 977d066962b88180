"""Resizing an active mapping after its device grew (a LUKS2 ``dynamic`` segment): the fuse backend for real
(root, FUSE, loop), the dm backend's dmsetup calls with a recording stand-in (this host has no device-mapper;
tests/kernel/test_dm_resize.py runs the real one), and a loop device following its grown file.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_root, require_tool
from tests.system.activation.test_fuse import NAME, Volume, _tear_down
from volumed.storage import loop
from volumed.storage.activation import (
    ActivationError,
    DataSegment,
    DmActivator,
    FuseActivator,
    dm_uuid,
    fuse_servers_over,
)
from volumed.storage.activation import _dm as dm_module
from volumed.storage.activation._capacity import refresh_loop_capacity

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MiB = 1 << 20
KEY = bytes(range(1, 65))


def size_of(device: str) -> int:
    return int(subprocess.run(["blockdev", "--getsize64", device], capture_output=True, check=True).stdout)


@pytest.fixture
def fuse(tmp_path: Path) -> Iterator[FuseActivator]:
    require_root()
    require_tool("fusermount3")
    activator = FuseActivator(runtime_dir=tmp_path / "run")
    yield activator
    _tear_down(activator, tmp_path)


def test_fuse_mapping_follows_its_grown_image(tmp_path: Path, fuse: FuseActivator) -> None:
    volume = Volume(tmp_path, sector_size=4096, size=16 * MiB)
    device = fuse.activate(NAME, volume.segment, volume.key)
    with open(device, "r+b") as block:
        block.write(b"before the resize" * 100)
    with volume.image.open("r+b") as image:
        image.truncate(32 * MiB)

    assert fuse.resize(NAME, volume.segment, volume.key) == 32 * MiB

    assert os.stat(fuse.decrypted_file(NAME)).st_size == 32 * MiB
    assert size_of(device) == 32 * MiB
    assert fuse.status(NAME).size == 32 * MiB
    assert fuse.activate(NAME, volume.segment, volume.key) == device  # the same mapping, not a conflict
    with open(device, "r+b") as block:
        assert block.read(1700) == b"before the resize" * 100
        block.seek(31 * MiB)
        block.write(b"in the new part")
        block.flush()
        os.fsync(block.fileno())
        block.seek(31 * MiB)
        assert block.read(15) == b"in the new part"
    # what guards the image against overwrites sees the grown range
    assert [use.name for use in fuse_servers_over(volume.image, 30 * MiB, MiB)] == [NAME]
    # the same size again is a no-op
    assert fuse.resize(NAME, volume.segment, volume.key) == 32 * MiB
    fuse.deactivate(NAME)


def test_fuse_resize_refuses_to_shrink_or_pass_the_device_end(tmp_path: Path, fuse: FuseActivator) -> None:
    volume = Volume(tmp_path, sector_size=4096, size=16 * MiB)
    device = fuse.activate(NAME, volume.segment, volume.key)
    smaller = DataSegment(device=str(volume.image), offset=0, size=8 * MiB, sector_size=4096)
    with pytest.raises(ActivationError, match="smaller than the 16777216 served"):
        fuse.resize(NAME, smaller, volume.key)
    larger = DataSegment(device=str(volume.image), offset=0, size=20 * MiB, sector_size=4096)
    with pytest.raises(ActivationError, match="refused to grow to 20971520 bytes"):
        fuse.resize(NAME, larger, volume.key)
    assert size_of(device) == 16 * MiB
    assert fuse.status(NAME).size == 16 * MiB
    fuse.deactivate(NAME)
    with pytest.raises(ActivationError, match="not active"):
        fuse.resize(NAME, volume.segment, volume.key)


def test_loop_device_follows_its_grown_file(tmp_path: Path) -> None:
    require_root()
    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(8 * MiB)
    with loop.attached(image) as device:
        with image.open("r+b") as handle:
            handle.truncate(12 * MiB)
        assert size_of(device.path) == 8 * MiB
        assert refresh_loop_capacity(device.path) == 12 * MiB
        assert size_of(device.path) == 12 * MiB


RECORDER = """#!/usr/bin/env python3
import json, os, sys
log = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls.jsonl")
stdin = sys.stdin.read()
with open(log, "a") as out:
    out.write(json.dumps({"argv": sys.argv[1:], "stdin": stdin}) + "\\n")
if sys.argv[1] == "table":
    print(os.environ.get("FAKE_DMSETUP_TABLE", ""))
if sys.argv[1] == os.environ.get("FAKE_DMSETUP_FAIL"):
    print("device-mapper: resume ioctl failed: Invalid argument", file=sys.stderr)
    sys.exit(1)
"""
LUKS_UUID = "0b1e6c2f-7a52-4c36-9a0c-2ab9c5f0e0d1"
DM_NAME = "luks2-EPHEMERAL"


@pytest.fixture
def dm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DmActivator, DataSegment, str]]:
    """DM_NAME active (a fake sysfs dm-0) over a real 32 MiB loop device, 64 KiB at 1 MiB with
    allow_discards and no_read_workqueue; the segment is dynamic, so 31 MiB now."""
    require_root()
    dmsetup = tmp_path / "dmsetup"
    dmsetup.write_text(RECORDER)
    dmsetup.chmod(dmsetup.stat().st_mode | stat.S_IXUSR)
    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(32 * MiB)
    sys_block = tmp_path / "sys" / "block"
    (sys_block / "dm-0" / "dm").mkdir(parents=True)
    (sys_block / "dm-0" / "dm" / "name").write_text(f"{DM_NAME}\n")
    (sys_block / "dm-0" / "dm" / "uuid").write_text(f"{dm_uuid(DM_NAME, LUKS_UUID)}\n")
    (sys_block / "dm-0" / "size").write_text("128\n")
    monkeypatch.setattr(dm_module, "SYS_BLOCK", sys_block)
    with loop.attached(image) as device:
        rdev = os.stat(device.path).st_rdev
        source = f"{os.major(rdev)}:{os.minor(rdev)}"
        monkeypatch.setenv(
            "FAKE_DMSETUP_TABLE",
            f"0 128 crypt aes-xts-plain64 - 0 {source} 2048 "
            "3 allow_discards no_read_workqueue sector_size:4096",
        )
        segment = DataSegment(
            device=device.path, offset=MiB, size=None, sector_size=4096, luks_uuid=LUKS_UUID
        )
        yield DmActivator(dmsetup=str(dmsetup)), segment, source


def dm_calls(tmp_path: Path) -> list[dict[str, object]]:
    log = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_dm_resize_reloads_the_longer_table_with_a_logon_key_and_resumes(
    tmp_path: Path, dm: tuple[DmActivator, DataSegment, str]
) -> None:
    activator, segment, source = dm
    assert activator.resize(DM_NAME, segment, KEY) == 31 * MiB
    made = [call for call in dm_calls(tmp_path) if call["argv"] != ["table", DM_NAME]]
    assert [call["argv"] for call in made] == [["reload", DM_NAME], ["resume", DM_NAME, "--noudevsync"]]
    assert made[0]["stdin"] == (
        f"0 63488 crypt aes-xts-plain64 :64:logon:volumed:{DM_NAME} 0 {source} 2048 "
        "3 allow_discards no_read_workqueue sector_size:4096\n"
    )
    assert KEY.hex() not in json.dumps(made)


def test_dm_resize_keeps_the_live_table_when_it_cannot_grow(
    tmp_path: Path, dm: tuple[DmActivator, DataSegment, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    activator, segment, _ = dm
    smaller = DataSegment(
        device=segment.device, offset=MiB, size=32 * 1024, sector_size=4096, luks_uuid=LUKS_UUID
    )
    with pytest.raises(ActivationError, match="smaller than the 65536 mapped"):
        activator.resize(DM_NAME, smaller, KEY)
    assert [call["argv"][0] for call in dm_calls(tmp_path)] == ["table"]  # type: ignore[index]

    monkeypatch.setenv("FAKE_DMSETUP_FAIL", "resume")
    with pytest.raises(ActivationError, match=f"dmsetup resume {DM_NAME} failed: device-mapper: resume"):
        activator.resize(DM_NAME, segment, KEY)
    assert [call["argv"] for call in dm_calls(tmp_path)][-1] == ["clear", DM_NAME]
