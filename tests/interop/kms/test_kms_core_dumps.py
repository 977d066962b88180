"""`volumed kms serve|keygen|list-keys` hold master keys in memory: the real processes have no core limit.

Before, `kms serve` kept the shell's core limit: a SIGSEGV with `ulimit -c unlimited` wrote a core holding
the raw master key.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests._core_limits import core_limit, fifo_writer, spawn_with_core_limit, unlimited_core
from volumed.keys.kms import MasterKeyRing, encode_master_key_file, save_master_key_file

if TYPE_CHECKING:
    import subprocess

VOLUMED = str(Path(sys.executable).parent / "volumed")


@pytest.fixture(autouse=True)
def _the_test_starts_children_with_a_core_limit() -> None:
    """Other tests harden the pytest process itself (CliRunner): these children must not inherit a 0."""
    unlimited_core()
    assert resource.getrlimit(resource.RLIMIT_CORE)[0] != 0, "no core limit to start the child with"


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return spawn_with_core_limit([VOLUMED, "kms", *args])


def test_kms_serve_has_no_core_limit(tmp_path: Path) -> None:
    key_file = tmp_path / "mk.yaml"
    save_master_key_file(key_file, MasterKeyRing.generate(), exclusive=True)
    with spawn("serve", "--listen", "127.0.0.1:0", "--key-file", str(key_file)) as server:
        try:
            assert server.stderr is not None
            for line in server.stderr:  # the server holds the keys once it listens
                if b'"kms.listening"' in line:
                    break
            else:
                pytest.fail(f"kms serve exited with {server.wait()} before listening")
            assert core_limit(server.pid) == ["0", "0"]
        finally:
            server.terminate()


@pytest.mark.parametrize("command", [["keygen", "--rotate"], ["list-keys"]], ids=["keygen", "list-keys"])
def test_kms_key_file_commands_have_no_core_limit(tmp_path: Path, command: list[str]) -> None:
    """The key file is a FIFO: the command blocks opening it, and its limits are read while it waits."""
    fifo = tmp_path / "mk.yaml"
    os.mkfifo(fifo, 0o600)
    process = spawn(*command, "--key-file", str(fifo))
    try:
        with fifo_writer(fifo, process) as writer:  # opens once the command has opened the key file
            limit = core_limit(process.pid)
            writer.write(encode_master_key_file(MasterKeyRing.generate()))
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, err
    assert limit == ["0", "0"]
