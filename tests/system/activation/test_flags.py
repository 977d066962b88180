"""dm-crypt flags (a volume config's perf ``options`` and ``allowDiscards``) at activation: the dm backend
writes them into the table it loads (checked with a recording dmsetup; the kernel tier's
tests/kernel/test_dm_resize.py reads them back from a real one), the fuse backend cannot honour them and says
which in its status.
"""

from __future__ import annotations

import json
import logging
import stat
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_root, require_tool
from tests.system.activation.test_fuse import NAME, Volume, _tear_down
from volumed.controllers.block._encryption import activation_flags
from volumed.resources import EncryptionConfigSpec
from volumed.storage.activation import ActivationError, DataSegment, DmActivator, FuseActivator

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MiB = 1 << 20
KEY = bytes(range(1, 65))
CONFIG = EncryptionConfigSpec(perf_options=("no_write_workqueue", "same_cpu_crypt"), allow_discards=True)

RECORDER = """#!/usr/bin/env python3
import json, os, sys
log = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls.jsonl")
with open(log, "a") as out:
    out.write(json.dumps({"argv": sys.argv[1:], "stdin": sys.stdin.read()}) + "\\n")
"""


def test_config_flags_in_cryptsetup_order() -> None:
    assert activation_flags(CONFIG) == ("no_write_workqueue", "same_cpu_crypt", "allow_discards")
    assert activation_flags(EncryptionConfigSpec()) == ()


def test_dm_table_carries_the_configs_flags(tmp_path: Path) -> None:
    require_root()
    dmsetup = tmp_path / "dmsetup"
    dmsetup.write_text(RECORDER)
    dmsetup.chmod(dmsetup.stat().st_mode | stat.S_IXUSR)
    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(8 * MiB)
    segment = DataSegment(device=str(image), offset=MiB, size=None, sector_size=4096)
    DmActivator(dmsetup=str(dmsetup)).activate("luks2-DATA", segment, KEY, flags=activation_flags(CONFIG))
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    tables = [call["stdin"] for call in calls if call["argv"][0] == "create"]
    assert len(tables) == 1
    assert tables[0].endswith(
        " 2048 4 allow_discards same_cpu_crypt no_write_workqueue sector_size:4096\n"
    ), tables[0]


def test_unknown_flag_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    segment = DataSegment(device=str(tmp_path / "absent.img"), offset=0, size=None, sector_size=512)
    with pytest.raises(ActivationError, match=r"unknown dm-crypt flag.*'no_read_wq'"):
        DmActivator(dmsetup="/bin/false").activate("luks2-DATA", segment, KEY, flags=["no_read_wq"])
    with pytest.raises(ActivationError, match=r"unknown dm-crypt flag.*'no_read_wq'"):
        FuseActivator(runtime_dir=tmp_path / "run").activate("luks2-DATA", segment, KEY, flags=["no_read_wq"])
    assert not (tmp_path / "run").exists()


@pytest.fixture
def fuse(tmp_path: Path) -> Iterator[FuseActivator]:
    require_root()
    require_tool("fusermount3")
    activator = FuseActivator(runtime_dir=tmp_path / "run")
    yield activator
    _tear_down(activator, tmp_path)


def test_fuse_says_which_flags_it_cannot_honour(
    tmp_path: Path, fuse: FuseActivator, caplog: pytest.LogCaptureFixture
) -> None:
    volume = Volume(tmp_path, sector_size=4096, size=8 * MiB)
    with caplog.at_level(logging.WARNING):
        device = fuse.activate(NAME, volume.segment, volume.key, flags=activation_flags(CONFIG))
    status = fuse.status(NAME)
    assert status.active
    assert status.device == device
    assert status.ignored_flags == ("allow_discards", "same_cpu_crypt", "no_write_workqueue")
    assert "cannot honour dm-crypt flag(s) allow_discards, same_cpu_crypt, no_write_workqueue" in caplog.text
    fuse.deactivate(NAME)
    fuse.activate(NAME, volume.segment, volume.key)
    assert fuse.status(NAME).ignored_flags == ()
    fuse.deactivate(NAME)
