"""`volumed kms serve|list-keys` refuse a master key file of another user (at start and on SIGHUP reload)."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from volumed.cli import volumed
from volumed.keys.kms import MasterKeyRing, save_master_key_file

VOLUMED = str(Path(sys.executable).parent / "volumed")


def _nobody() -> int:
    return pwd.getpwnam("nobody").pw_uid


def _refusal(path: Path) -> str:
    return (
        f"master key file {path}: owned by uid {_nobody()}, not by this user (uid {os.geteuid()}) or root: "
        "its owner could read the keys or replace them"
    )


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "mk.yaml"
    save_master_key_file(path, MasterKeyRing.generate(), exclusive=True)
    return path


@pytest.mark.parametrize(
    "command", [["list-keys"], ["serve", "--listen", "127.0.0.1:0"]], ids=["list-keys", "serve"]
)
def test_a_0600_key_file_of_another_user_is_refused(key_file: Path, command: list[str]) -> None:
    os.chown(key_file, _nobody(), -1)
    result = CliRunner().invoke(volumed, ["kms", *command, "--key-file", str(key_file)])
    assert result.exit_code == 1
    assert result.output == f"Error: {_refusal(key_file)}\n"


def _next_event(lines: object, event: str) -> dict[str, object]:
    for line in lines:  # type: ignore[attr-defined]
        record = json.loads(line)
        if record["event"] == event:
            return record  # type: ignore[no-any-return]
    pytest.fail(f"kms serve exited before logging {event}")


def test_a_key_file_given_to_another_user_is_refused_on_reload(key_file: Path) -> None:
    """SIGHUP re-reads the file: the keys in use are kept and the refusal is logged."""
    with subprocess.Popen(
        [VOLUMED, "kms", "serve", "--listen", "127.0.0.1:0", "--key-file", str(key_file)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as server:
        try:
            assert server.stderr is not None
            _next_event(server.stderr, "kms.listening")
            os.chown(key_file, _nobody(), -1)
            server.send_signal(signal.SIGHUP)
            reload = _next_event(server.stderr, "kms.keys_loaded")
            assert (reload["result"], reload["reason"]) == ("error", _refusal(key_file))
        finally:
            server.terminate()
