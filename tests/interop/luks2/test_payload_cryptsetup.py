"""Payload both ways with cryptsetup: a detached header and ``reencrypt --force-offline-reencrypt``.

cryptsetup itself makes the headers (``luksFormat --header``) and tells the volume key
(``--dump-volume-key``), so this checks PayloadStream alone, independent of our header library.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_tool
from volumed.storage.luks2.payload import PayloadStream

if TYPE_CHECKING:
    from pathlib import Path

SIZE = 2 << 20
FAST_KDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]


def cryptsetup(*args: str | Path) -> str:
    result = subprocess.run(
        [require_tool("cryptsetup"), "--batch-mode", *map(str, args)], capture_output=True, text=True
    )
    assert result.returncode == 0, f"cryptsetup {args}: {result.stderr}"
    return result.stdout


def volume_key(header: Path, key_file: Path) -> bytes:
    dump = cryptsetup("luksDump", "--dump-volume-key", "--key-file", key_file, header)
    hex_part = dump.split("MK dump:", 1)[1]
    return bytes.fromhex("".join(re.findall(r"\b[0-9a-f]{2}\b", hex_part)))


def segment(header: Path) -> dict[str, object]:
    metadata = json.loads(cryptsetup("luksDump", "--dump-json-metadata", header))
    found: dict[str, object] = metadata["segments"]["0"]
    return found


def open_payload(device: Path, header: Path, key_file: Path, handle: object) -> PayloadStream:
    info = segment(header)
    assert info["offset"] == "0"
    assert info["size"] == "dynamic"
    return PayloadStream(
        handle,  # type: ignore[arg-type]
        offset=0,
        size=device.stat().st_size,
        sector_size=int(str(info["sector_size"])),
        iv_tweak=int(str(info["iv_tweak"])),
        volume_key=volume_key(header, key_file),
        cipher=str(info["encryption"]),
    )


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key"
    path.write_bytes(b"interop passphrase")
    return path


@pytest.mark.parametrize(("sector_size", "key_size"), [(512, 512), (4096, 512), (4096, 256)])
def test_ours_decrypted_by_cryptsetup_reencrypt(
    tmp_path: Path, key_file: Path, sector_size: int, key_size: int
) -> None:
    device, header = tmp_path / "data.img", tmp_path / "h.hdr"
    device.write_bytes(bytes(SIZE))
    cryptsetup(
        "luksFormat", "--type", "luks2", "--header", header, "--key-file", key_file, *FAST_KDF,
        "--sector-size", str(sector_size), "--key-size", str(key_size), device,
    )  # fmt: skip
    plain = bytearray(os.urandom(SIZE))
    with device.open("r+b") as handle, open_payload(device, header, key_file, handle) as stream:
        stream.write(plain[:1000])  # partial data units: read-modify-write
        stream.seek(777)
        stream.write(plain[777 : SIZE - 333])
        stream.seek(SIZE - 333)
        stream.write(plain[SIZE - 333 :])
    assert device.read_bytes() != plain
    cryptsetup(
        "reencrypt",
        "--decrypt",
        "--header",
        header,
        "--force-offline-reencrypt",
        "--key-file",
        key_file,
        device,
    )
    assert device.read_bytes() == plain


@pytest.mark.parametrize("sector_size", [512, 4096])
def test_cryptsetup_reencrypt_encrypted_read_by_us(tmp_path: Path, key_file: Path, sector_size: int) -> None:
    device, header = tmp_path / "data.img", tmp_path / "h.hdr"
    plain = os.urandom(SIZE)
    device.write_bytes(plain)
    cryptsetup(
        "reencrypt", "--encrypt", "--type", "luks2", "--header", header, "--force-offline-reencrypt",
        "--key-file", key_file, *FAST_KDF, "--sector-size", str(sector_size), device,
    )  # fmt: skip
    assert device.read_bytes() != plain
    with device.open("rb") as handle, open_payload(device, header, key_file, handle) as stream:
        assert stream.read() == plain
        assert stream.pread(5000, 12345) == plain[12345 : 12345 + 5000]
