"""What the dm backend asks of dmsetup, checked with a recording stand-in for dmsetup (this host has no
device-mapper; the QEMU kernel tier runs the real one): the table arrives on stdin naming a logon key, the key
is never on argv, the hex-key table is the fallback, and the image gets an autoclear loop device.
"""

from __future__ import annotations

import json
import stat
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_root
from volumed.storage import loop
from volumed.storage.activation import ActivationError, DataSegment, DmActivator

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
