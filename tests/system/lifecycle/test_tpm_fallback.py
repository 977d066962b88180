"""Seed doc tpm keys, on a software TPM (swtpm): EPHEMERAL has a TPM key bound to PCR 7 in slot 0 and a nodeID
key in slot 1. While PCR 7 measures the same as at enrollment the TPM key opens; once PCR 7 changed (a new
SecureBoot db, say) the TPM key fails, the nodeID key opens, and the failed TPM slot shows in the status —
left in place (not killed), so the TPM key works again once PCR 7 is back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests._swtpm import Swtpm
from tests.system.lifecycle._node import (
    describe,
    luks_dump,
    node_id_key,
    status_of,
    tpm_key,
    volume_config,
)

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

FIRMWARE = b"SecureBoot db: vendor keys v1"
CHANGED_FIRMWARE = b"SecureBoot db: vendor keys v2"


def power_cycle(tpm: Swtpm, measured: bytes) -> None:
    """A node reboot as the TPM sees it: PCRs reset, then firmware measures into PCR 7."""
    tpm.reboot()
    tpm.pcr_extend(7, measured)


async def test_pcr_change_falls_back_to_the_next_key(node: Node) -> None:
    node.write_config(
        volume_config("STATE", [node_id_key(0)]),
        volume_config("EPHEMERAL", [tpm_key(0, pcrs=[7]), node_id_key(1)]),
    )
    ephemeral = node.region("EPHEMERAL")
    with Swtpm.start(node.workdir / "tpm") as tpm:
        tpm.pcr_extend(7, FIRMWARE)  # an all-zero PCR 7 is refused for sealing, as in Talos
        async with node.boot(tcti=tpm.tcti) as boot:
            assert boot.snapshot.ok, describe(boot.snapshot)
            status = status_of(boot.snapshot, "EPHEMERAL")
            assert (status.encryption_slot, status.tpm_pcrs) == (0, (7,))
            (node.target("EPHEMERAL") / "marker").write_text("TPM-sealed volume\n")
        dump = luks_dump(ephemeral)
        assert sorted(int(s) for s in dump["keyslots"]) == [0, 1]
        assert dump["tokens"]["0"]["type"] == "talos-tpm2"

        power_cycle(tpm, FIRMWARE)  # same measurements: the TPM key opens
        async with node.boot(tcti=tpm.tcti) as boot:
            status = status_of(boot.snapshot, "EPHEMERAL")
            assert (status.encryption_slot, status.encryption_failed_syncs) == (0, ()), describe(
                boot.snapshot
            )

        power_cycle(tpm, CHANGED_FIRMWARE)  # PCR 7 changed: the TPM refuses to unseal
        async with node.boot(tcti=tpm.tcti) as boot:
            assert boot.snapshot.ok, describe(boot.snapshot)
            status = status_of(boot.snapshot, "EPHEMERAL")
            assert status.encryption_slot == 1  # the nodeID key opened
            assert len(status.encryption_failed_syncs) == 1, status.encryption_failed_syncs
            assert status.encryption_failed_syncs[0].startswith("error updating key slot 0 tpm:")
            assert (node.target("EPHEMERAL") / "marker").read_text() == "TPM-sealed volume\n"
        after = luks_dump(ephemeral)
        assert sorted(int(s) for s in after["keyslots"]) == [0, 1]  # the TPM slot is kept
        assert after["keyslots"]["0"] == dump["keyslots"]["0"]
        assert after["tokens"]["0"] == dump["tokens"]["0"]

        power_cycle(tpm, FIRMWARE)  # back to the enrolled measurements: the TPM key opens again
        async with node.boot(tcti=tpm.tcti) as boot:
            status = status_of(boot.snapshot, "EPHEMERAL")
            assert (status.encryption_slot, status.encryption_failed_syncs) == (0, ()), describe(
                boot.snapshot
            )
        assert tpm.handle_count() == 0  # no transient object left loaded in the TPM
