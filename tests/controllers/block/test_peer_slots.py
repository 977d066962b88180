"""Key-slot sync and another tool's key slots on the same header (issue 13): a slot bound to a token by the
token's own LUKS2 ``keyslots`` list (clevis here, made with cryptsetup; systemd-cryptenroll's systemd-tpm2
in tests/interop/tpm/test_systemd_cryptenroll_peer.py) is a peer's: kept with its token when not configured,
never re-enrolled when configured, and its token never replaced or removed by volumed's own slots."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING, Any, Final

import pytest

from tests._tools import require_tool
from volumed.controllers.block._encryption import Location, SlotKey, open_encrypted, sync_key_slots
from volumed.keys import StaticKeyProvider
from volumed.keys.testing import FakeSealingKeyProvider
from volumed.resources import EncryptionConfigSpec, PbkdfSpec

if TYPE_CHECKING:
    from pathlib import Path

ENC: Final = EncryptionConfigSpec(pbkdf=PbkdfSpec(type="pbkdf2", iterations=1000), key_size_bits=256)
FAST: Final = ("--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000")
CLEVIS_TOKEN: Final = {
    "type": "clevis",
    "keyslots": ["1"],
    "jwe": {"ciphertext": "", "encrypted_key": "", "iv": "", "protected": "e30", "tag": ""},
}


def static(slot: int, passphrase: bytes) -> SlotKey:
    return SlotKey(slot, "static", StaticKeyProvider(slot=slot, passphrase=passphrase))


def cryptsetup(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [require_tool("cryptsetup"), *args], input=input, capture_output=True, check=False, timeout=60
    )


def dump(location: Location) -> dict[str, Any]:
    result = cryptsetup("luksDump", "--dump-json-metadata", location.path)
    assert result.returncode == 0, result.stderr
    metadata: dict[str, Any] = json.loads(result.stdout)
    return metadata


def opens(location: Location, passphrase: bytes, slot: int) -> bool:
    args = ("open", "--test-passphrase", "--key-slot", str(slot), "--key-file", "-", location.path)
    return cryptsetup(*args, input=passphrase).returncode == 0


def peer(location: Location) -> tuple[dict[str, Any], dict[str, Any]]:
    """The peer's token (id 0) and key slot (1) as cryptsetup reads them."""
    metadata = dump(location)
    return metadata["tokens"]["0"], metadata["keyslots"]["1"]


@pytest.fixture
def image(tmp_path: Path) -> Location:
    """A cryptsetup volume: "ours" in slot 0; a peer's key in slot 1 bound to its clevis token (id 0)."""
    path = tmp_path / "disk.img"
    with path.open("wb") as f:
        f.truncate(32 * 1024 * 1024)
    (tmp_path / "ours").write_bytes(b"ours")
    (tmp_path / "peer").write_bytes(b"peer key")
    (tmp_path / "token.json").write_text(json.dumps(CLEVIS_TOKEN))
    steps = [
        ("luksFormat", "-q", "--type", "luks2", *FAST, str(path), str(tmp_path / "ours")),
        ("luksAddKey", "-q", *FAST, "--key-file", str(tmp_path / "ours"), "--key-slot", "1", str(path),
         str(tmp_path / "peer")),
        ("token", "import", "--json-file", str(tmp_path / "token.json"), str(path)),
    ]  # fmt: skip
    for step in steps:
        result = cryptsetup(*step)
        assert result.returncode == 0, result.stderr
    location = Location(str(path))
    assert dump(location)["tokens"]["0"]["keyslots"] == ["1"]
    return location


async def test_an_unconfigured_peer_slot_is_kept_while_ours_come_and_go(image: Location) -> None:
    before = peer(image)
    opened = await open_encrypted(image, ENC, [static(0, b"ours")])
    assert opened.failed_syncs == []
    assert await sync_key_slots(image, ENC, [static(0, b"ours"), static(2, b"two")], opened) == []
    assert sorted(dump(image)["keyslots"]) == ["0", "1", "2"]
    assert await sync_key_slots(image, ENC, [static(0, b"ours")], opened) == []
    assert sorted(dump(image)["keyslots"]) == ["0", "1"]
    assert peer(image) == before
    assert opens(image, b"peer key", 1)


async def test_a_changed_slot_at_the_peer_tokens_id_keeps_the_token(image: Location) -> None:
    before = peer(image)
    opened = await open_encrypted(image, ENC, [static(0, b"ours")])
    assert await sync_key_slots(image, ENC, [static(0, b"changed")], opened) == []
    assert opens(image, b"changed", 0)
    assert peer(image) == before
    assert opens(image, b"peer key", 1)


async def test_the_peer_slot_named_in_the_config_is_reported_not_taken(image: Location) -> None:
    before = peer(image)
    opened = await open_encrypted(image, ENC, [static(0, b"ours"), static(1, b"mine")])
    assert opened.failed_syncs == [
        "error updating key slot 1 static: key slot 1 is bound to token 0 (clevis), another tool's: left"
        " alone (free it with that tool, or configure another slot)"
    ]
    assert peer(image) == before
    assert opens(image, b"peer key", 1)
    assert not opens(image, b"mine", 1)


async def test_a_token_of_ours_never_replaces_the_peers(image: Location) -> None:
    before = peer(image)
    sealed = SlotKey(0, "kms", FakeSealingKeyProvider(slot=0, kind="kms"))
    opened = await open_encrypted(image, ENC, [static(0, b"ours")])
    assert await sync_key_slots(image, ENC, [sealed, static(2, b"two")], opened) == [
        "error updating key slot 0 kms: token 0 is another tool's (clevis, bound to key slot 1): left alone,"
        " key slot 0 is not changed (configure another slot)"
    ]
    assert peer(image) == before
    assert opens(image, b"ours", 0)
    assert opens(image, b"peer key", 1)
