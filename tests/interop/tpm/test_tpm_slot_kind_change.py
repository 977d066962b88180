"""A configured tpm slot whose token is missing (its kind changed in the config: static -> tpm on slot 1) or
of another kind (a sideroKMS token) is sealed again and enrolled in one key-slot sync, add-first; the TPM is a
real swtpm."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from volumed.controllers.block._encryption import Location, SlotKey, format_encrypted, open_encrypted
from volumed.keys import StaticKeyProvider
from volumed.keys.tpm import TPMKeyProvider
from volumed.resources import EncryptionConfigSpec, PbkdfSpec
from volumed.storage.luks2 import Luks2Volume, NoKeyError

if TYPE_CHECKING:
    from pathlib import Path

    from tests._swtpm import Swtpm

ENC = EncryptionConfigSpec(pbkdf=PbkdfSpec(type="pbkdf2", iterations=1000), key_size_bits=256)
KMS_TOKEN = {"type": "sideroKMS", "keyslots": [], "UserData": {"sealedData": "AAAA"}}


def static(slot: int, passphrase: bytes) -> SlotKey:
    return SlotKey(slot, "static", StaticKeyProvider(slot=slot, passphrase=passphrase))


def opens_with(location: Location, slot: int, passphrase: bytes) -> bool:
    with Luks2Volume.open(location.path, read_only=True) as volume:
        try:
            volume.unlock(passphrase, keyslot=slot)
        except NoKeyError:
            return False
    return True


@pytest.mark.parametrize("old_token", [None, KMS_TOKEN], ids=["no-token", "kms-token"])
async def test_static_slot_becomes_tpm_in_one_sync(
    swtpm: Swtpm, tmp_path: Path, old_token: dict[str, Any] | None
) -> None:
    path = tmp_path / "disk.img"
    with path.open("wb") as image:
        image.truncate(32 << 20)
    location = Location(str(path))
    await format_encrypted(location, ENC, [static(0, b"recovery"), static(1, b"slot one")])
    if old_token is not None:
        with Luks2Volume.open(location.path) as volume:
            volume.import_token(old_token, token_id=1)

    tpm = TPMKeyProvider(1, tcti=swtpm.tcti, pcr_only=True)
    opened = await open_encrypted(location, ENC, [static(0, b"recovery"), SlotKey(1, "tpm", tpm)])

    assert opened.failed_syncs == []
    with Luks2Volume.open(location.path, read_only=True) as volume:
        token = volume.tokens[1].to_dict()
    assert token["type"] == "talos-tpm2"
    assert opens_with(location, 1, (await tpm.get_key(token)).reveal())
    assert not opens_with(location, 1, b"slot one")
    assert opens_with(location, 0, b"recovery")
