"""A STATE whose only key is a PCR-only TPM key (``volumedPcrOnly``, a node without a signed UKI), at a boot
without a config, from META tag 9 alone, on a software TPM (swtpm): it opens and its key slot is left as it
is. Tag 9 used to drop the flag: STATE still opened (the token names its policy), but the key-slot sync took
the key for a signed-policy one and tried to reseal it, failing with "PCR bank 11 is populated with all
zeroes"."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests._swtpm import Swtpm
from tests.system.lifecycle._node import describe, luks_dump, status_of, tpm_key, volume_config

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

FIRMWARE = b"SecureBoot db: vendor keys v1"


async def test_pcr_only_state_opens_from_meta_without_config(node: Node) -> None:
    node.write_config(volume_config("STATE", [tpm_key(0, pcrs=[7])]), volume_config("EPHEMERAL"))
    with Swtpm.start(node.workdir / "tpm") as tpm:
        tpm.pcr_extend(7, FIRMWARE)
        async with node.boot(tcti=tpm.tcti) as boot:
            assert boot.snapshot.ok, describe(boot.snapshot)
            (node.target("STATE") / "marker").write_text("on STATE\n")
        tokens = luks_dump(node.region("STATE"))["tokens"]
        meta = node.region("META")
        shown = node.volumed("meta", "get", node.system_disk, "9", "--offset", str(meta.offset))
        [key] = json.loads(shown.stdout)["EncryptionKeys"]
        assert key["KeyTPM"]["TPMOptions"] == {"PCRs": [7], "VolumedPCROnly": True}

        tpm.reboot()
        tpm.pcr_extend(7, FIRMWARE)
        missing = node.workdir / "no-such-config.yaml"
        async with node.boot(config=missing, tcti=tpm.tcti) as boot:
            snapshot = boot.snapshot
            assert snapshot.configured == {"STATE"}, describe(snapshot)
            state = status_of(snapshot, "STATE")
            assert snapshot.ok, describe(snapshot)
            assert (state.encryption_slot, state.tpm_pcrs, state.configured_encryption_keys) == (
                0,
                (7,),
                ("tpm",),
            )
            assert state.encryption_failed_syncs == (), state.encryption_failed_syncs  # the key matches
            assert (node.target("STATE") / "marker").read_text() == "on STATE\n"
        assert luks_dump(node.region("STATE"))["tokens"] == tokens  # not resealed under another policy
        assert tpm.handle_count() == 0
