"""Every command that writes to a device refuses a disk a running `volumed run` owns, as wipe does: exit 5,
the same message, nothing written (review 3, attack_writers.sh: they all wrote under the running instance)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from volumed.cli import volumed
from volumed.storage.blockdev import lock_disk

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024
KDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
WRITERS = {
    "luks add-key": ["luks", "add-key", "--key-file", "{key}", "--new-key-file", "{new}", *KDF, "{luks}"],
    "luks change-key": [
        "luks",
        "change-key",
        "--key-file",
        "{key}",
        "--new-key-file",
        "{new}",
        *KDF,
        "{luks}",
    ],
    "luks kill-slot": ["luks", "kill-slot", "{luks}", "1"],
    "luks config --label": ["luks", "config", "--label", "other", "{luks}"],
    "luks repair": ["luks", "repair", "{luks}"],
    "luks token import": ["luks", "token", "import", "--json-file", "{token}", "--token-id", "1", "{luks}"],
    "luks token remove": ["luks", "token", "remove", "--token-id", "0", "{luks}"],
    "luks write": ["luks", "write", "--key-file", "{key}", "{luks}"],
    "meta set": ["meta", "set", "{meta}", "0x0a", "value"],
    "meta delete": ["meta", "delete", "{meta}", "0x0b"],
    "meta repair": ["meta", "repair", "{meta}"],
}


def invoke(args: list[str], stdin: bytes = b"") -> tuple[int, str]:
    result = CliRunner().invoke(volumed, args, input=stdin, catch_exceptions=False)
    return result.exit_code, result.output


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A LUKS2 image with slots 0 and 1 and token 0, a META image with tag 0x0b set, and the key files."""
    tmp = tmp_path_factory.mktemp("writers")
    files = {name: tmp / name for name in ("key", "new", "token")}
    files["key"].write_bytes(b"secret")
    files["new"].write_bytes(b"another")
    files["token"].write_text(json.dumps({"type": "test-token", "keyslots": []}))
    luks, meta = tmp / "luks.img", tmp / "meta.img"
    luks.write_bytes(bytes(32 * MIB))
    meta.write_bytes(bytes(MIB))
    steps = [
        ["luks", "format", "--batch-mode", "--key-file", str(files["key"]), *KDF, str(luks)],
        ["luks", "add-key", "--key-file", str(files["key"]), "--new-key-file", str(files["new"]), *KDF,
         "--key-slot", "1", str(luks)],
        ["luks", "token", "import", "--json-file", str(files["token"]), "--token-id", "0", str(luks)],
        ["meta", "set", str(meta), "0x0b", "set-before"],
    ]  # fmt: skip
    for step in steps:
        code, output = invoke(step)
        assert code == 0, (step, output)
    return {**files, "luks": luks, "meta": meta}


@pytest.mark.parametrize("command", list(WRITERS))
def test_a_writer_refuses_a_disk_a_running_instance_owns(devices: dict[str, Path], command: str) -> None:
    args = [word.format(**{name: str(path) for name, path in devices.items()}) for word in WRITERS[command]]
    target = devices["meta" if command.startswith("meta") else "luks"]
    lock = lock_disk(target, owner="volumed run")
    try:
        before = digest(target)
        code, output = invoke(args, stdin=b"data")
        assert code == 5, output
        assert (
            output.strip()
            .splitlines()[-1]
            .endswith(f"{target} is on a disk in use by volumed run (pid {os.getpid()})")
        ), output
        assert digest(target) == before
    finally:
        lock.release()
