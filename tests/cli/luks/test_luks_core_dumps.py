"""`volumed luks` commands read passphrases and volume keys: the real processes have no core limit.

The passphrase comes from a FIFO (--key-file): the command blocks opening it, and its /proc limits are read
while it waits, with the volume open and before the key is derived.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

import pytest

from tests._core_limits import core_limit, fifo_writer, spawn_with_core_limit, unlimited_core
from tests.storage.luks2._luks2_helpers import PASS, format_small

VOLUMED = str(Path(sys.executable).parent / "volumed")


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
    unlimited_core()  # other tests harden the pytest process itself (CliRunner): not inherited here
    assert resource.getrlimit(resource.RLIMIT_CORE)[0] != 0
    device = tmp_path / "d.img"
    format_small(device).close()
    fifo = tmp_path / "passphrase"
    os.mkfifo(fifo, 0o600)
    new = tmp_path / "new-passphrase"
    new.write_bytes(b"another passphrase")
    args = [word.format(new=new) for word in command]
    process = spawn_with_core_limit([VOLUMED, "luks", *args, "--key-file", str(fifo), str(device)])
    try:
        with fifo_writer(fifo, process) as writer:  # opens once the command has opened the key file
            limit = core_limit(process.pid)
            writer.write(PASS)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert limit == ["0", "0"]
    assert process.returncode == 0, err
