"""`volumed run --log-level NAME=LEVEL` lifts one library's logger (which stays at WARNING otherwise, -v or
not); a malformed item is a usage error naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from volumed.storage import disklayout

VOLUMED = str(Path(sys.executable).parent / "volumed")
MIB = 1024 * 1024


def run_once(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    image = tmp_path / "node.img"
    if not image.exists():
        disklayout.create_disk_image(image, 256 * MIB, state_size=16 * MIB)
    config = tmp_path / "config.yaml"
    config.write_text("apiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\n")
    argv = [VOLUMED, "run", "--config", str(config), "--disk", str(image), "--backend", "fuse", "--once"]
    argv += ["--root", str(tmp_path / "root"), "--state-dir", str(tmp_path / "state"), "--timeout", "60"]
    return subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=120, check=False)


def test_a_librarys_logger_is_lifted_by_name(tmp_path: Path) -> None:
    quiet = run_once(tmp_path, "-v")
    assert quiet.returncode == 0, quiet.stderr
    assert "Using selector" not in quiet.stderr  # asyncio's debug line: other libraries stay at WARNING
    lifted = run_once(tmp_path, "--log-level", "asyncio=debug")
    assert lifted.returncode == 0, lifted.stderr
    assert "asyncio: Using selector" in lifted.stderr


def test_a_malformed_level_is_a_usage_error(tmp_path: Path) -> None:
    result = run_once(tmp_path, "--log-level", "asyncio")
    assert result.returncode == 2
    assert "Invalid value for '--log-level': 'asyncio' is not NAME=LEVEL" in result.stderr
    assert not (tmp_path / "state").exists()  # nothing done
