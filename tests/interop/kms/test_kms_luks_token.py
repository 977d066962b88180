"""The sideroKMS token as cryptsetup stores it: byte-for-byte Talos' layout, both ways, and the passphrase
recovered through the KMS opens the key slot with the real cryptsetup."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

from tests._tools import require_tool
from volumed.keys import token_to_json
from volumed.keys.kms import KMSKeyProvider
from volumed.storage.luks2 import KdfSettings, Luks2Volume

from .conftest import NODE_UUID

if TYPE_CHECKING:
    from pathlib import Path

SLOT = 1
FAST_KDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]


def _cryptsetup(*args: str, stdin: bytes = b"") -> bytes:
    result = subprocess.run(
        [require_tool("cryptsetup"), *args], input=stdin, capture_output=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


async def test_token_written_by_our_library_exported_by_cryptsetup(tmp_path: Path, endpoint: str) -> None:
    provider = KMSKeyProvider(slot=SLOT, endpoint=endpoint, node_uuid=NODE_UUID)
    key = await provider.new_key()
    assert key.token is not None
    image = tmp_path / "disk.img"
    image.write_bytes(b"")
    with image.open("r+b") as file:
        file.truncate(20 * 1024 * 1024)
    kdf = KdfSettings(type="pbkdf2", iterations=1000)
    with Luks2Volume.format(image, key.passphrase.reveal(), kdf=kdf, keyslot=SLOT) as volume:
        volume.import_token(key.token, token_id=SLOT)

    exported = _cryptsetup("token", "export", "--token-id", str(SLOT), str(image))
    assert exported == token_to_json(key.token)
    assert exported.startswith(b'{"type":"sideroKMS","keyslots":[],"UserData":{"sealedData":"')

    passphrase = await provider.get_key(json.loads(exported))
    _cryptsetup(
        "open",
        "--test-passphrase",
        "--key-slot",
        str(SLOT),
        "--key-file",
        "-",
        str(image),
        stdin=passphrase.reveal(),
    )


async def test_token_imported_by_cryptsetup_read_by_our_library(tmp_path: Path, endpoint: str) -> None:
    provider = KMSKeyProvider(slot=SLOT, endpoint=endpoint, node_uuid=NODE_UUID)
    key = await provider.new_key()
    assert key.token is not None
    image = tmp_path / "disk.img"
    with image.open("wb") as file:
        file.truncate(20 * 1024 * 1024)
    token_file = tmp_path / "token.json"
    token_file.write_bytes(token_to_json(key.token))
    _cryptsetup(
        "luksFormat",
        "--type",
        "luks2",
        "--batch-mode",
        *FAST_KDF,
        "--key-slot",
        str(SLOT),
        "--key-file",
        "-",
        str(image),
        stdin=key.passphrase.reveal(),
    )
    _cryptsetup("token", "import", "--token-id", str(SLOT), "--json-file", str(token_file), str(image))

    with Luks2Volume.open(image, read_only=True) as volume:
        text = volume.export_token(SLOT)
        assert text.encode() == token_to_json(key.token)
        passphrase = await provider.get_key(json.loads(text))
        volume.unlock(passphrase.reveal(), keyslot=SLOT)
