"""TPM, second boot, in the guest: PCR 7 measures the same, ``TPMKeyProvider.get_key`` unseals the key of the
``talos-tpm2`` token through ``/dev/tpmrm0``, cryptsetup accepts it for slot 1, and the volume opens with the
first boot's file on it.

Params: ``device``, ``name``, ``file``, ``text``, ``pcr7`` (as the first boot read it).
"""

from __future__ import annotations

import anyio

from volumed.storage.activation import DmActivator
from volumed.storage.luks2 import Luks2Volume

from ._support import Scenario, run_scenario
from ._tpm import TPM_SLOT, provider, read_pcr7, require_tpm, tpm_token
from ._volumes import data_segment, dm_devices, note_stale_node, read_file


def main(s: Scenario) -> None:
    device, name = s.params["device"], s.params["name"]

    s.step("same TPM, same firmware: PCR 7 is what the key was sealed to")
    require_tpm(s)
    pcr7 = read_pcr7()
    s.check(pcr7 == s.params["pcr7"], f"PCR 7 is {pcr7} on this boot, {s.params['pcr7']} on the first")

    s.step(f"TPMKeyProvider.get_key with token {TPM_SLOT}: unseal through /dev/tpmrm0")
    with Luks2Volume.open(device) as volume:
        passphrase = anyio.run(provider().get_key, tpm_token(volume))
        key = volume.unlock(passphrase.reveal(), keyslot=TPM_SLOT)
        segment = data_segment(volume, device)

    s.step(f"cryptsetup accepts the unsealed key for key slot {TPM_SLOT}")
    s.run(
        "cryptsetup", "open", "--test-passphrase", "--key-slot", str(TPM_SLOT), "--key-file=-", device,
        stdin=passphrase.reveal(),
    )  # fmt: skip

    s.step(f"DmActivator.activate {name}: the first boot's file is there")
    activator = DmActivator()
    mapped = activator.activate(name, segment, key.material)
    text = read_file(s, mapped, "ext4", "state", s.params["file"])
    s.check(text == s.params["text"], f"{s.params['file']} reads {text!r}")
    activator.deactivate(name)
    s.check(dm_devices() == {}, f"dm devices left after deactivate: {dm_devices()}")
    note_stale_node(s, mapped)


if __name__ == "__main__":
    run_scenario(main)
