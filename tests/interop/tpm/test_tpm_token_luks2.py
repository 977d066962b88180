"""A TPM-sealed key slot end to end: our LUKS2 library stores the ``talos-tpm2`` token, the real cryptsetup
exports it unchanged and opens the slot with the TPM's passphrase; a token cryptsetup imports unseals too."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.storage.luks2._luks2_helpers import cryptsetup, format_small, key_file
from volumed.keys import token_to_json
from volumed.keys.tpm import TPMKeyProvider
from volumed.storage.luks2 import Luks2Volume

if TYPE_CHECKING:
    from pathlib import Path

    from tests._swtpm import Swtpm

SLOT = 1


async def test_tpm_slot_through_our_header_and_cryptsetup(swtpm: Swtpm, tmp_path: Path) -> None:
    tpm_key = TPMKeyProvider(SLOT, tcti=swtpm.tcti, pcr_only=True)
    new = await tpm_key.new_key()
    assert new.token is not None
    device = tmp_path / "disk.img"

    with format_small(device, new.passphrase.reveal(), keyslot=SLOT) as volume:
        assert volume.import_token(new.token, token_id=SLOT) == SLOT

    exported = cryptsetup("token", "export", "--token-id", SLOT, device).stdout
    assert json.loads(exported) == new.token
    assert exported.strip() == token_to_json(new.token).decode()  # byte for byte, key order included
    assert cryptsetup("luksDump", device).stdout.count("talos-tpm2") == 1

    with Luks2Volume.open(device, read_only=True) as volume:
        token = volume.tokens[SLOT].to_dict()
    passphrase = await tpm_key.get_key(token)
    assert passphrase == new.passphrase
    key = key_file(tmp_path, passphrase.reveal(), name="tpm.key")
    cryptsetup("open", "--test-passphrase", "--key-slot", SLOT, "--key-file", key, device)


async def test_token_imported_by_cryptsetup_unseals(swtpm: Swtpm, tmp_path: Path) -> None:
    tpm_key = TPMKeyProvider(SLOT, tcti=swtpm.tcti, pcr_only=True)
    new = await tpm_key.new_key()
    assert new.token is not None
    device = tmp_path / "disk.img"
    format_small(device, new.passphrase.reveal(), keyslot=SLOT).close()
    token_file = tmp_path / "token.json"
    token_file.write_bytes(token_to_json(new.token))

    cryptsetup("token", "import", "--token-id", SLOT, "--json-file", token_file, device)

    with Luks2Volume.open(device, read_only=True) as volume:
        token = volume.tokens[SLOT].to_dict()
        assert await tpm_key.get_key(token) == new.passphrase
        volume.unlock(new.passphrase.reveal(), keyslot=SLOT)


async def test_a_changed_pcr_list_is_sealed_again_by_the_key_slot_sync(swtpm: Swtpm, tmp_path: Path) -> None:
    """Changing a TPM key's PCRs in the config was never applied: the token stayed sealed to the old list
    while the status and META showed the new one. The slot is now sealed again, at boot and at runtime."""
    from volumed.controllers.block._encryption import (
        Location,
        SlotKey,
        format_encrypted,
        open_encrypted,
        sync_key_slots,
    )
    from volumed.keys import StaticKeyProvider
    from volumed.resources import EncryptionConfigSpec, PbkdfSpec

    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(32 * 1024 * 1024)
    location = Location(str(image))
    encryption = EncryptionConfigSpec(pbkdf=PbkdfSpec(type="pbkdf2", iterations=1000), key_size_bits=256)

    def keys(pcrs: tuple[int, ...]) -> list[SlotKey]:
        tpm = TPMKeyProvider(0, tcti=swtpm.tcti, pcrs=pcrs, pcr_only=True)
        return [
            SlotKey(0, "tpm", tpm),
            SlotKey(1, "static", StaticKeyProvider(slot=1, passphrase=b"recovery")),
        ]

    def sealed_pcrs() -> list[int]:
        with Luks2Volume.open(image, read_only=True) as volume:
            pcrs: list[int] = volume.tokens[0].to_dict()["UserData"]["pcrs"]
        return pcrs

    swtpm.pcr_extend(4, b"boot loader")  # a second populated PCR (an all-zero one is refused at enroll)
    await format_encrypted(location, encryption, keys((7,)))
    assert sealed_pcrs() == [7]

    opened = await open_encrypted(location, encryption, keys((4, 7)))  # the TPM slot opens, and is resealed
    assert (opened.slot, opened.failed_syncs) == (0, [])
    assert sealed_pcrs() == [4, 7]
    assert (await open_encrypted(location, encryption, keys((4, 7)))).slot == 0

    assert await sync_key_slots(location, encryption, keys((7,)), opened) == []  # changed while open
    assert sealed_pcrs() == [7]
    assert (await open_encrypted(location, encryption, keys((7,)))).slot == 0
