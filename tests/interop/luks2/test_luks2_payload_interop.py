"""Payload both ways through headers we write: `volumed luks write/read` against cryptsetup reencrypt."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.storage.luks2._luks2_helpers import MIB, PASS, cryptsetup, image, key_file

if TYPE_CHECKING:
    from pathlib import Path

FAST = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]


def volumed(*args: object, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(
        [sys.executable, "-m", "volumed", "luks", *map(str, args)], capture_output=True, input=stdin
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("sector", [512, 4096])
def test_cryptsetup_decrypts_what_we_wrote(tmp_path: Path, sector: int) -> None:
    device, header = image(tmp_path / "d.img", MIB), tmp_path / "h.hdr"
    secret = key_file(tmp_path, PASS)
    plain = os.urandom(MIB)
    volumed(
        "format",
        "--batch-mode",
        "--header",
        header,
        "--sector-size",
        sector,
        "--key-file",
        secret,
        *FAST,
        device,
    )
    volumed("write", "--header", header, "--key-file", secret, device, stdin=plain)
    assert device.read_bytes() != plain
    cryptsetup(
        "reencrypt",
        "--decrypt",
        "--header",
        header,
        "--force-offline-reencrypt",
        "--batch-mode",
        "--key-file",
        secret,
        device,
    )
    assert device.read_bytes() == plain


@pytest.mark.parametrize("sector", [512, 4096])
def test_we_read_what_cryptsetup_encrypted(tmp_path: Path, sector: int) -> None:
    device, header = tmp_path / "d.img", tmp_path / "h.hdr"
    plain = os.urandom(MIB)
    device.write_bytes(plain)
    secret = key_file(tmp_path, PASS)
    cryptsetup(
        "reencrypt",
        "--encrypt",
        "--header",
        header,
        "--force-offline-reencrypt",
        "--batch-mode",
        "--sector-size",
        sector,
        *FAST,
        "--key-file",
        secret,
        device,
    )
    assert device.read_bytes() != plain
    assert volumed("read", "--header", header, "--key-file", secret, device).stdout == plain


def test_attached_header_at_an_offset_in_a_disk_image(tmp_path: Path) -> None:
    """A volume inside a disk image (a partition): written in place, checked on the extracted range."""
    disk = image(tmp_path / "disk.img", 8 * MIB)
    secret = key_file(tmp_path, PASS)
    start, length = MIB, 4 * MIB
    where = ["--volume-offset", start, "--volume-size", length]
    volumed("format", "--batch-mode", "--luks2-keyslots-size", MIB, "--key-file", secret, *FAST, *where, disk)
    plain = os.urandom(2 * MIB)
    volumed("write", "--key-file", secret, *where, disk, stdin=plain)
    part = tmp_path / "part.img"
    part.write_bytes(disk.read_bytes()[start : start + length])
    out = volumed("read", "--key-file", secret, part).stdout
    assert out == plain
    cryptsetup("open", "--test-passphrase", "--key-file", secret, part)
