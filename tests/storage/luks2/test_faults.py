"""The test-only crash point: armed by the environment, it ends the process right after the armed write of the
armed operation (what a kill -9 there would leave), and does nothing otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from volumed.storage.luks2 import faults

if TYPE_CHECKING:
    from pathlib import Path

# One write outside any scope, then three inside "op" (buffered: only a flush puts them in the file).
SCRIPT = """
import sys
from volumed.storage.luks2 import faults
from volumed.storage.luks2.lowlevel import Region
with open(sys.argv[1], "r+b") as f:
    region = Region(f)
    region.write(0, b"A")
    with faults.crash_scope("op"):
        for i, byte in enumerate(b"BCD", start=1):
            region.write(i, bytes([byte]))
    print("finished")
"""


def run(path: Path, armed: str | None) -> subprocess.CompletedProcess[str]:
    path.write_bytes(b"....")
    env = dict(os.environ)
    env.pop(faults.ENV, None)
    if armed is not None:
        env[faults.ENV] = armed
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)], env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(("armed", "left"), [("op:0", b"...."), ("op:1", b"AB.."), ("op:2", b"ABC.")])
def test_the_process_ends_after_the_armed_write_of_the_armed_operation(
    tmp_path: Path, armed: str, left: bytes
) -> None:
    result = run(tmp_path / "f", armed)
    assert result.returncode == faults.EXIT_CODE
    assert "finished" not in result.stdout
    assert (tmp_path / "f").read_bytes() == left  # the write outside the scope was not counted


def test_a_scope_that_ends_first_says_how_many_writes_it_made(tmp_path: Path) -> None:
    result = run(tmp_path / "f", "op:4")
    assert result.returncode == 0
    assert f"{faults.ENV}: op ended after 3 writes" in result.stderr


@pytest.mark.parametrize("armed", [None, "", "op", "op:x", ":1", "other:1"])
def test_unarmed_or_another_operation_changes_nothing(tmp_path: Path, armed: str | None) -> None:
    result = run(tmp_path / "f", armed)
    assert (result.returncode, result.stdout, result.stderr) == (0, "finished\n", "")
    assert (tmp_path / "f").read_bytes() == b"ABCD"
