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
    tpm_key = TPMKeyProvider(SLOT, tcti=swtpm.tcti)
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
    tpm_key = TPMKeyProvider(SLOT, tcti=swtpm.tcti)
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
