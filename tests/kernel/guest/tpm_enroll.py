"""TPM, first boot, in the guest: a key sealed to PCR 7 by ``TPMKeyProvider`` through ``/dev/tpmrm0`` is
enrolled as LUKS2 key slot 1 with its ``talos-tpm2`` token next to a recovery passphrase (slot 0); it opens
the volume through ``DmActivator`` and a file is written. cryptsetup's luksDump shows the slot and the token.

Params: ``device``, ``name``, ``recovery``, ``file``, ``text``.
"""

from __future__ import annotations

import json
import re

import anyio

from volumed.keys.tpm import TPM_TOKEN_TYPE
from volumed.storage.activation import DmActivator
from volumed.storage.luks2 import Luks2Volume

from ._support import Scenario, run_scenario
from ._tpm import TPM_SLOT, provider, read_pcr7, require_tpm
from ._volumes import KDF, data_segment, dm_devices, format_filesystem, note_stale_node, write_file


def main(s: Scenario) -> None:
    device, name = s.params["device"], s.params["name"]
    recovery = s.params["recovery"].encode()

    s.step("the guest has a TPM, and the firmware measured PCR 7")
    require_tpm(s)
    pcr7 = read_pcr7()
    s.note(f"PCR 7 = {pcr7}")
    s.check(pcr7 not in ("00" * 32, "ff" * 32), f"PCR 7 holds no measurement: {pcr7}")
    s.record("pcr7", pcr7)

    s.step(f"Luks2Volume.format {device} with the recovery passphrase in slot 0")
    with Luks2Volume.format(device, recovery, kdf=KDF, label="STATE") as volume:
        key = volume.unlock(recovery)

    s.step("TPMKeyProvider.new_key: a fresh key sealed to PCR 7 through /dev/tpmrm0")
    new = anyio.run(provider().new_key)
    s.check(new.token is not None and new.token["type"] == TPM_TOKEN_TYPE, "new_key made no talos-tpm2 token")
    assert new.token is not None

    s.step(f"enroll it as key slot {TPM_SLOT} (authorised by the volume key) with its token")
    with Luks2Volume.open(device) as volume:
        slot = volume.add_key(new.passphrase.reveal(), volume_key=key, keyslot=TPM_SLOT, kdf=KDF)
        volume.import_token(new.token, token_id=TPM_SLOT)
    s.check(slot == TPM_SLOT, f"the TPM key went to slot {slot}")

    s.step("cryptsetup luksDump / token export: key slots 0 and 1, the talos-tpm2 token of slot 1")
    dump = s.run("cryptsetup", "luksDump", device).stdout
    tokens = dump.split("Tokens:", 1)[1].split("Digests:", 1)[0]
    s.check(
        re.search(rf"^\s+{TPM_SLOT}: {TPM_TOKEN_TYPE}$", tokens, re.M), f"luksDump lists no token {TPM_SLOT}"
    )
    keyslots = dump.split("Keyslots:", 1)[1].split("Tokens:", 1)[0]
    s.check(re.findall(r"^\s+(\d+): luks2", keyslots, re.M) == ["0", str(TPM_SLOT)], "key slots are not 0, 1")
    exported = json.loads(s.run("cryptsetup", "token", "export", "--token-id", str(TPM_SLOT), device).stdout)
    s.check(exported["type"] == TPM_TOKEN_TYPE, f"token {TPM_SLOT} has type {exported['type']!r}")
    # Talos' layout: no LUKS2 key slot in "keyslots"; the slot is in UserData and is the token id
    user_data = exported["UserData"]
    s.check(exported["keyslots"] == [], f"token {TPM_SLOT} keyslots {exported['keyslots']}, Talos has []")
    s.check(
        user_data["keyslots"] == [TPM_SLOT], f"token {TPM_SLOT} UserData.keyslots {user_data['keyslots']}"
    )
    s.check(user_data["pcrs"] == [7], f"token {TPM_SLOT} is sealed to PCRs {user_data['pcrs']}")

    s.step(f"open with the TPM key's slot, DmActivator.activate {name}, mkfs.ext4, write {s.params['file']}")
    with Luks2Volume.open(device) as volume:
        tpm_key = volume.unlock(new.passphrase.reveal(), keyslot=TPM_SLOT)
        segment = data_segment(volume, device)
    s.check(tpm_key == key, "slot 1 holds another volume key")
    activator = DmActivator()
    mapped = activator.activate(name, segment, tpm_key.material)
    format_filesystem(s, mapped, "ext4", "STATE")
    write_file(s, mapped, "ext4", "state", s.params["file"], s.params["text"])
    activator.deactivate(name)
    s.check(dm_devices() == {}, f"dm devices left after deactivate: {dm_devices()}")
    note_stale_node(s, mapped)


if __name__ == "__main__":
    run_scenario(main)
