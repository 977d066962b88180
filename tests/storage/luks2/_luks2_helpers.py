"""Shared helpers for the LUKS2 tests: tiny KDFs, small images, cryptsetup runs, fault-injecting files."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

from tests._tools import require_tool
from volumed.storage.luks2 import KdfSettings, Luks2Volume

if TYPE_CHECKING:
    from pathlib import Path

PASS = b"correct horse"
OTHER = b"battery staple"

#: The fast KDFs the issue asks for: pbkdf2 1000 iterations, argon2 32 MiB / 4 passes / 1 lane.
PBKDF2_FAST = KdfSettings(type="pbkdf2", iterations=1000)
ARGON2ID_FAST = KdfSettings(type="argon2id", iterations=4, memory_kib=32768, parallel=1)
ARGON2I_FAST = KdfSettings(type="argon2i", iterations=4, memory_kib=32768, parallel=1)

MIB = 1 << 20
#: A small layout: 1 MiB key slot area (4 slots of 512-bit keys), data at 2 MiB.
SMALL = {"keyslots_size": MIB}


def image(path: Path, size: int = 3 * MIB) -> Path:
    """A sparse image file of ``size`` bytes."""
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def format_small(path: Path, passphrase: bytes = PASS, **options: object) -> Luks2Volume:
    """A fresh volume on a 3 MiB image with the small layout and pbkdf2-1000."""
    if not path.exists():
        image(path)
    opts: dict[str, object] = {"kdf": PBKDF2_FAST, **SMALL}
    opts.update(options)
    return Luks2Volume.format(path, passphrase, **opts)  # type: ignore[arg-type]


def key_file(directory: Path, secret: bytes, name: str | None = None) -> Path:
    """A key file holding ``secret`` byte for byte (no newline)."""
    path = directory / (name or f"key-{secret.hex()[:12]}")
    path.write_bytes(secret)
    return path


def cryptsetup(
    *args: object, check: bool = True, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real cryptsetup; with ``check`` a failure shows its stderr."""
    result = subprocess.run(
        [require_tool("cryptsetup"), *map(str, args)],
        capture_output=True,
        input=stdin.decode() if stdin is not None else None,
        text=True,
    )
    if check:
        assert result.returncode == 0, f"cryptsetup {args}: rc={result.returncode} {result.stderr}"
    return result


def cryptsetup_volume_key(device: Path, key: Path, *extra: object) -> bytes:
    """The volume key as ``cryptsetup luksDump --dump-volume-key`` prints it."""
    out = cryptsetup(
        "luksDump", "--dump-volume-key", "--batch-mode", "--key-file", key, *extra, device
    ).stdout
    hex_part = out.split("MK dump:", 1)[1]
    return bytes.fromhex("".join(re.findall(r"\b[0-9a-f]{2}\b", hex_part)))


def snapshot(path: Path) -> bytes:
    return path.read_bytes()


class CrashAfter(io.RawIOBase):
    """A file wrapper whose ``k``-th write (1-based) is the last one: then the "process stops".

    Later writes raise ``Crash``; reads and seeks go to the real file, so the state on disk is exactly what a
    process killed after k writes would leave.
    """

    def __init__(self, file: BinaryIO, k: int) -> None:
        super().__init__()
        self._file = file
        self._left = k
        self.writes = 0
        self.name = getattr(file, "name", "<crash>")

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self._left <= 0:
            raise Crash
        self._left -= 1
        self.writes += 1
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def fileno(self) -> int:
        raise OSError("no descriptor: crash simulation")


class Crash(Exception):
    """The simulated process death."""


# ---- crash points (shared by the unit and the cryptsetup crash tests) ----

NEW = b"new passphrase"

Operation = Callable[[Luks2Volume], object]

OPERATIONS: dict[str, tuple[Operation, tuple[bytes, ...]]] = {
    # operation, passphrases of which at least one must open afterwards (all that must keep working)
    "add-key": (lambda v: v.add_key(NEW, passphrase=PASS, kdf=PBKDF2_FAST), (PASS,)),
    "kill-slot": (lambda v: v.kill_slot(1), (PASS,)),
    "change-key": (lambda v: v.change_key(PASS, NEW, keyslot=0, kdf=PBKDF2_FAST), (PASS, NEW)),
    "token-import": (lambda v: v.import_token({"type": "t", "keyslots": ["0"]}, token_id=0), (PASS,)),
}


def prepared(tmp_path: Path) -> Path:
    path = tmp_path / "base.img"
    with format_small(path) as vol:
        vol.add_key(OTHER, passphrase=PASS, kdf=PBKDF2_FAST)
    return path


def count_writes(base: Path, work: Path, op: Operation) -> int:
    shutil.copyfile(base, work)
    with open(work, "r+b") as f:
        wrapper = CrashAfter(f, 10**6)
        op(Luks2Volume.from_files(wrapper))  # type: ignore[arg-type]
        return wrapper.writes


def crash_at(base: Path, work: Path, op: Operation, k: int) -> None:
    shutil.copyfile(base, work)
    with open(work, "r+b") as f:
        try:
            op(Luks2Volume.from_files(CrashAfter(f, k)))  # type: ignore[arg-type]
        except Crash:
            return
    raise AssertionError(f"the operation finished within {k} writes")
