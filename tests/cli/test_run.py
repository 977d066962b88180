"""`volumed run` as a user starts it: what it says at start about its config file and its TPM TCTI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from volumed.storage import disklayout

VOLUMED = str(Path(sys.executable).parent / "volumed")
MIB = 1024 * 1024
MISSING = "the config file does not exist (yet)"


def _run_once(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """`volumed run --once` on a fresh image (never the machine's disks), given up after a second."""
    image = tmp_path / "node.img"
    if not image.exists():
        disklayout.create_disk_image(image, 256 * MIB, state_size=16 * MIB)
    command = [VOLUMED, "run", "--config", str(config), "--disk", str(image), "--backend", "fuse"]
    command += ["--root", str(tmp_path / "root"), "--state-dir", str(tmp_path / "state"), "--once"]
    return subprocess.run(
        [*command, "--timeout", "1"], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_missing_config_is_named_in_a_warning_at_start(tmp_path: Path) -> None:
    config = tmp_path / "confg.yaml"
    result = _run_once(tmp_path, config)
    first = result.stderr.splitlines()[0]
    assert "[warning" in first
    assert MISSING in first
    assert f"path={config}" in first


def test_no_warning_when_the_config_exists_or_is_staged(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\n")
    assert MISSING not in _run_once(tmp_path, config).stderr
    config.unlink()
    (tmp_path / "config.yaml.staged").write_text(
        "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\n"
    )
    result = _run_once(tmp_path, config)
    assert MISSING not in result.stderr
    assert "promoted the staged config" in result.stderr


@pytest.mark.parametrize("tcti", ["/dev/tpmrm0", "", " ", ":/dev/tpmrm0"])
def test_a_malformed_tpm_tcti_is_refused_at_start(tmp_path: Path, tcti: str) -> None:
    state_dir = tmp_path / "state"
    command = [VOLUMED, "run", "--tpm-tcti", tcti, "--once", "--state-dir", str(state_dir)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--tpm-tcti': {tcti!r} is not a TCTI string like 'device:/dev/tpmrm0'"
    )
    assert "Traceback" not in result.stderr
    assert not state_dir.exists()


def test_a_malformed_tpm_tcti_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    result = subprocess.run(
        [VOLUMED, "run", "--once", "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "VOLUMED_TPM_TCTI": "/dev/tpmrm0"},
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--tpm-tcti': '/dev/tpmrm0' is not a TCTI string like 'device:/dev/tpmrm0'"
        " (from VOLUMED_TPM_TCTI)"
    )
    assert not state_dir.exists()
