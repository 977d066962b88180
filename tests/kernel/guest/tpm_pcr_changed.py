"""TPM, PCR 7 changed, in the guest: after an extend of PCR 7 (what a changed SecureBoot state does) the
sealed key does not unseal and ``TPMKeyProvider.get_key`` says "PCR policy check failed"; the recovery
passphrase still opens the volume, with the file on it.

Params: ``device``, ``name``, ``recovery``, ``file``, ``text``, ``pcr7`` (as the first boot read it).
"""

from __future__ import annotations

import hashlib

import anyio

from volumed.keys import KeyProviderError
from volumed.keys.tpm import PCRPolicyError
from volumed.storage.activation import DmActivator
from volumed.storage.luks2 import Luks2Volume

from ._support import Scenario, run_scenario
from ._tpm import TCTI, TPM_SLOT, provider, read_pcr7, require_tpm, tpm_token
from ._volumes import data_segment, dm_devices, note_stale_node, read_file


def main(s: Scenario) -> None:
    device, name = s.params["device"], s.params["name"]

    s.step("extend PCR 7 with tpm2_pcrextend, as a changed SecureBoot state would")
    require_tpm(s)
    s.check(read_pcr7() == s.params["pcr7"], "PCR 7 differs before the extend")
    event = hashlib.sha256(b"kernel tier: SecureBoot db changed").hexdigest()
    s.run("tpm2_pcrextend", "-T", TCTI, f"7:sha256={event}")
    pcr7 = read_pcr7()
    s.check(pcr7 != s.params["pcr7"], "PCR 7 did not change")
    s.record("pcr7_after_extend", pcr7)

    s.step(f"TPMKeyProvider.get_key with token {TPM_SLOT}: refused with a clear error")
    with Luks2Volume.open(device) as volume:
        token = tpm_token(volume)
        try:
            anyio.run(provider().get_key, token)
        except PCRPolicyError as exc:
            message = str(exc)
        except KeyProviderError as exc:
            raise AssertionError(
                f"get_key failed with {type(exc).__name__}, not PCRPolicyError: {exc}"
            ) from exc
        else:
            raise AssertionError("get_key unsealed the key although PCR 7 changed")
        s.note(f"PCRPolicyError: {message}")
        s.record("tpm_error", message)
        s.check("PCR policy check failed" in message, f"unclear error: {message!r}")
        s.check(f"slot {TPM_SLOT}" in message, f"the error does not name the slot: {message!r}")

        s.step("the recovery passphrase (slot 0) still opens the volume")
        key = volume.unlock(s.params["recovery"].encode())
        s.check(key.keyslot == 0, f"opened by slot {key.keyslot}")
        segment = data_segment(volume, device)

    activator = DmActivator()
    mapped = activator.activate(name, segment, key.material)
    text = read_file(s, mapped, "ext4", "state", s.params["file"])
    s.check(text == s.params["text"], f"{s.params['file']} reads {text!r}")
    activator.deactivate(name)
    s.check(dm_devices() == {}, f"dm devices left after deactivate: {dm_devices()}")
    note_stale_node(s, mapped)


if __name__ == "__main__":
    run_scenario(main)
