"""`volumed luks` commands read passphrases and volume keys: the real processes have no core limit.

The passphrase comes from a FIFO (--key-file): the command blocks opening it, and its /proc limits are read
while it waits, with the volume open and before the key is derived.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.storage.luks2._luks2_helpers import PASS, format_small

VOLUMED = str(Path(sys.executable).parent / "volumed")


def _unlimited_core() -> None:
    """Start the child with a core limit (as after `ulimit -c unlimited`): the command must drop it."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):  # not root: as much as the hard limit allows
        hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


def core_limit(pid: int) -> list[str]:
    limits = Path(f"/proc/{pid}/limits").read_text()
    line = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    return line.split()[4:6]


FAST = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]


@pytest.mark.parametrize(
    "command",
    [
        ["test-key"],
        ["read"],
        ["write"],
        ["volume-key"],
        ["add-key", "--new-key-file", "{new}", *FAST],
        ["change-key", "--new-key-file", "{new}", *FAST],
    ],
    ids=["test-key", "read", "write", "volume-key", "add-key", "change-key"],
)
def test_a_luks_command_holding_a_passphrase_has_no_core_limit(tmp_path: Path, command: list[str]) -> None:
    _unlimited_core()  # other tests harden the pytest process itself (CliRunner): not inherited here
    assert resource.getrlimit(resource.RLIMIT_CORE)[0] != 0
    device = tmp_path / "d.img"
    format_small(device).close()
    fifo = tmp_path / "passphrase"
    os.mkfifo(fifo, 0o600)
    new = tmp_path / "new-passphrase"
    new.write_bytes(b"another passphrase")
    args = [word.format(new=new) for word in command]
    process = subprocess.Popen(
        [VOLUMED, "luks", *args, "--key-file", str(fifo), str(device)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_unlimited_core,
    )
    with open(fifo, "wb") as writer:  # returns once the command has opened the key file
        limit = core_limit(process.pid)
        writer.write(PASS)
    _, err = process.communicate()
    assert limit == ["0", "0"]
    assert process.returncode == 0, err
