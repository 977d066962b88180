"""`volumed config validate FILE`: exact output and exit codes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import structlog
from click.testing import CliRunner

from volumed.cli import volumed

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

VALID = """\
version: v1alpha1
machine: {}
---
apiVersion: v1alpha1
kind: VolumeConfig
name: STATE
encryption:
  provider: luks2
  keys:
    - nodeID: {}
      slot: 0
---
apiVersion: v1alpha1
kind: UserVolumeConfig
name: data
provisioning:
  diskSelector: {match: 'disk.transport == "nvme"'}
  maxSize: 50GiB
"""

INVALID = """\
apiVersion: v1alpha1
kind: VolumeConfig
name: STATE
encryption:
  provider: luks2
  keys:
    - nodeID: {}
      lockToState: true
    - slot: 0
      static: {passphrase: hunter2}
---
apiVersion: v1alpha1
kind: UserVolumeConfig
name: bad name
provisioning: {diskSelector: {match: 'disk.size >'}, minSize: 1GB}
"""


@pytest.fixture(autouse=True)
def fresh_structlog() -> Iterator[None]:
    """The command configures structlog when nobody has; keep that from leaking into other tests."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def run(*args: str, input_text: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(volumed, list(args), input=input_text, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_valid(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(VALID)
    assert run("config", "validate", str(path)) == (
        0,
        "valid: VolumeConfig/STATE, UserVolumeConfig/data\nignored: 1 document of other kinds\n",
        "",
    )


def test_valid_from_stdin() -> None:
    assert run("config", "validate", "-", input_text=VALID)[:2] == (
        0,
        "valid: VolumeConfig/STATE, UserVolumeConfig/data\nignored: 1 document of other kinds\n",
    )


def test_no_volume_documents(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("apiVersion: v1alpha1\nkind: NetworkDefaultActionConfig\ningress: accept\n")
    assert run("config", "validate", str(path))[:2] == (
        0,
        "valid: no volume documents\nignored: 1 document of other kinds\n",
    )


def test_an_empty_file_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    code, out, err = run("config", "validate", str(path))
    assert code == 1
    assert "holds no documents (empty, or still being written)" in out + err


def test_verbose_logs_ignored_documents_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(VALID)
    code, out, err = run("config", "validate", "--verbose", str(path))
    assert code == 0
    assert out == "valid: VolumeConfig/STATE, UserVolumeConfig/data\nignored: 1 document of other kinds\n"
    assert "ignoring config document of another kind" in err


def test_invalid(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(INVALID)
    code, out, err = run("config", "validate", str(path))
    assert code == 1
    assert out == (
        "VolumeConfig/STATE: encryption.keys[0].lockToState: "
        'state-locked key is not allowed for the "STATE" volume\n'
        "VolumeConfig/STATE: encryption.keys[1].slot: duplicate key slot\n"
        "UserVolumeConfig (document 2): name: "
        "name can only contain lowercase and uppercase ASCII letters, digits, and hyphens\n"
        "UserVolumeConfig (document 2): provisioning.diskSelector.match: "
        "disk selector is invalid: syntax error at line 1, column 11\n"
    )
    assert err == f"{path}: invalid (4 errors)\n"
    assert "hunter2" not in out + err


def test_missing_file(tmp_path: Path) -> None:
    code, out, err = run("config", "validate", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert out == ""
    assert "does not exist" in err


def test_a_legacy_only_config_names_its_system_disk_encryption(tmp_path: Path) -> None:
    """A config whose only volume settings are machine.systemDiskEncryption said "no volume documents"."""
    path = tmp_path / "legacy.yaml"
    path.write_text(
        "version: v1alpha1\n"
        "machine:\n"
        "  systemDiskEncryption:\n"
        "    state:\n"
        "      provider: luks2\n"
        "      keys:\n"
        "        - slot: 0\n"
        "          nodeID: {}\n"
    )
    assert run("config", "validate", str(path)) == (
        0,
        "valid: v1alpha1/machine.systemDiskEncryption.state\n",
        "",
    )
