"""`volumed run --once` with a TPM key under Talos' signed PCR 11 (UKI) policy, on a software TPM (swtpm): the
UKI's PCR-signing public key and PCR 11 signature JSON are made by systemd-measure and given with
``--tpm-pcr-public-key`` and ``--tpm-pcr-signature``; PCR 11 is measured as a UKI boot leaves it at
enter-machined. The first run formats the volume and seals its key (a Talos v1.12 token), the next boot opens
it through the TPM key. Without the options the run looks in /.extra (systemd-stub's place, absent here) and
says the key cannot be sealed."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, Any, Final

from tests._swtpm import Swtpm
from tests._uki import UKI, make_uki, measure_uki_boot
from tests.system.lifecycle._node import luks_dump, user_volume_config, volume_config
from volumed.cli.run import EXIT_VOLUME_FAILED
from volumed.keys.tpm import DEFAULT_PCR_PUBLIC_KEY

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

FIRMWARE: Final = b"firmware: SecureBoot=1 PK KEK db dbx"
RUN_LIMIT: Final = 120.0


def signed_tpm_key(slot: int) -> dict[str, Any]:
    """A TPM key as Talos writes it: PCR 7 plus the signed PCR 11 policy (no volumedPcrOnly)."""
    return {"slot": slot, "tpm": {"options": {"pcrs": [7]}}}


def documents() -> list[dict[str, Any]]:
    """STATE and EPHEMERAL unencrypted, and u-data with the TPM key alone (it opens only through the TPM).

    Nothing grows: a grow at start can race the mount (e2fsck or the grow's own mount then fail), which
    is not what this test is about.
    """
    data = user_volume_config("data", [signed_tpm_key(0)])
    data["provisioning"].update({"minSize": "64MiB", "maxSize": "64MiB", "grow": False})
    ephemeral = volume_config("EPHEMERAL")
    ephemeral["provisioning"] = {"grow": False}
    return [volume_config("STATE"), ephemeral, data]


def uki_boot(tpm: Swtpm, uki: UKI) -> None:
    """A node reboot as the TPM sees it: PCRs reset, firmware measures PCR 7, the UKI and phases PCR 11."""
    tpm.reboot()
    tpm.pcr_extend(7, FIRMWARE)
    measure_uki_boot(tpm, uki)


def run_once(node: Node, tpm: Swtpm, uki: UKI | None) -> subprocess.CompletedProcess[str]:
    argv = [*node.run_argv(timeout=30.0), "--tpm-tcti", tpm.tcti]
    if uki is not None:
        argv += ["--tpm-pcr-public-key", str(uki.public_key), "--tpm-pcr-signature", str(uki.signature)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=RUN_LIMIT, check=False)


def test_run_seals_and_opens_under_the_signed_uki_policy(node: Node) -> None:
    node.write_config(*documents())
    with Swtpm.start(node.workdir / "tpm") as tpm:
        uki = make_uki(node.workdir / "uki", tpm)
        uki_boot(tpm, uki)
        first = run_once(node, tpm, uki)
        assert first.returncode == 0, first.stdout + first.stderr
        dump = luks_dump(node.region("u-data"))
        assert sorted(dump["keyslots"]) == ["0"]
        [token] = [t for t in dump["tokens"].values() if t["type"] == "talos-tpm2"]
        user_data = token["UserData"]
        assert user_data["keyslots"] == [0]
        assert (user_data["pcrs"], user_data["pubkey_pcrs"], user_data["encryption_version"]) == (
            [7],
            [11],
            "1",
        )

        uki_boot(tpm, uki)  # the next boot: same UKI, same measurements
        second = run_once(node, tpm, uki)
        assert second.returncode == 0, second.stdout + second.stderr  # only the TPM key can open u-data
        assert luks_dump(node.region("u-data"))["tokens"] == dump["tokens"]  # opened, not resealed
        assert tpm.handle_count() == 0
    assert not node.leftovers()


def test_run_without_the_uki_options_says_the_public_key_is_missing(node: Node) -> None:
    assert not DEFAULT_PCR_PUBLIC_KEY.exists(), f"{DEFAULT_PCR_PUBLIC_KEY} exists: this test needs it absent"
    node.write_config(*documents())
    with Swtpm.start(node.workdir / "tpm") as tpm:
        uki = make_uki(node.workdir / "uki", tpm)
        uki_boot(tpm, uki)  # PCR 11 measured: only the files are missing
        result = run_once(node, tpm, None)
    output = result.stdout + result.stderr
    assert result.returncode == EXIT_VOLUME_FAILED, output
    reason = (
        "u-data failed: no key can be made to encrypt the volume: slot 0 (tpm): tpm key for slot 0:"
        f" PCR signing public key {DEFAULT_PCR_PUBLIC_KEY} is missing: the node did not boot a signed UKI"
    )
    assert reason in output, output
    assert not node.leftovers()
