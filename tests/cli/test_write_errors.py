"""Commands whose output cannot be written (a read-only filesystem, a file in the way, a full stdout) end
with one line naming what failed and exit 1, never a traceback, and change nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from tests._tools import require_root, require_tool
from tests.storage.luks2._luks2_helpers import PASS, format_small, key_file
from volumed.cli import volumed

if TYPE_CHECKING:
    from collections.abc import Iterator

VOLUMED = str(Path(sys.executable).parent / "volumed")
CONFIG = """\
apiVersion: v1alpha1
kind: VolumeConfig
name: EPHEMERAL
encryption:
  keys: [{nodeID: {}}]
"""


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder on a read-only filesystem (a tmpfs mounted ro): root's writes fail there with EROFS."""
    require_root()
    path = tmp_path / "ro"
    path.mkdir()
    subprocess.run([require_tool("mount"), "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run([require_tool("umount"), str(path)], check=True)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(volumed, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_apply_config_under_a_file_says_so(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    blocker = tmp_path / "etc"
    blocker.write_text("a file, not a folder")
    target = blocker / "volumed" / "config.yaml"
    assert invoke("apply-config", str(config), "--config", str(target)) == (
        1,
        "",
        f"cannot write {target}: a file is in the way of its folder {target.parent}; nothing applied\n",
    )
    assert blocker.read_text() == "a file, not a folder"


@pytest.mark.parametrize("mode", ["auto", "staged"])
def test_apply_config_on_a_read_only_filesystem(tmp_path: Path, read_only_dir: Path, mode: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    target = read_only_dir / "config.yaml"
    written = target.with_name("config.yaml.staged") if mode == "staged" else target
    assert invoke("apply-config", str(config), "--config", str(target), "--mode", mode) == (
        1,
        "",
        f"cannot write {written}: Read-only file system; nothing applied\n",
    )


def test_kms_keygen_on_a_read_only_filesystem(read_only_dir: Path) -> None:
    target = read_only_dir / "mk.json"
    assert invoke("kms", "keygen", "--key-file", str(target)) == (
        1,
        "",
        f"Error: master key file {target}: cannot write: Read-only file system\n",
    )


def test_luks_read_to_a_full_stdout(tmp_path: Path) -> None:
    device = tmp_path / "d.img"
    format_small(device).close()
    secret = key_file(tmp_path, PASS)
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [VOLUMED, "luks", "read", "--key-file", str(secret), str(device)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert (result.returncode, result.stderr) == (
        1,
        "Cannot write the payload to stdout: No space left on device.\n",
    )


def test_luks_read_into_a_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    device = tmp_path / "d.img"
    format_small(device).close()
    secret = key_file(tmp_path, PASS)
    with subprocess.Popen(
        [VOLUMED, "luks", "read", "--key-file", str(secret), str(device)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as reader:
        assert reader.stdout is not None
        assert reader.stderr is not None
        assert len(reader.stdout.read(10)) == 10
        reader.stdout.close()
        assert reader.wait(timeout=60) == 1
        assert reader.stderr.read() == b""
