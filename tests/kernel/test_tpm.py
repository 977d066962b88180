"""A TPM key under Talos' signed PCR 11 (UKI) policy in a QEMU guest with swtpm as its TPM (``/dev/tpmrm0``):
three boots of one machine with `volumed run --once --backend dm` as the volume subsystem (scenario
``tests/kernel/guest/tpm_uki_boot.py``).

The UKI's artefacts are made on the host by the real ``systemd-measure sign`` (``tests/_uki.py``), signed for
``enter-initrd:leave-initrd:enter-machined``. In each boot the guest measures PCR 11 as systemd-stub and the
initrd would (up to ``leave-initrd``) and places the public key and the signature JSON at systemd-stub's
``/.extra`` paths, volumed's defaults; volumed extends ``enter-machined``, and ``start-the-world`` once the
volumes are open. STATE has a TPM key in slot 0 (Talos' default policy: the signed PCR 11, then PCR 7) and a
static key in slot 1.

1. first boot: STATE is formatted and the TPM key enrolled; its ``talos-tpm2`` token as Talos 1.12 writes it.
2. second boot: STATE opens through the TPM key (slot 0), the token unchanged.
3. PCR 7 extended before volumed runs: the static key (slot 1) opens STATE and the TPM slot's failure is
   reported ("PCR policy check failed"); the slot and its token are kept.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Final

import pytest

from tests._swtpm import Swtpm
from tests._uki import UKI, make_uki
from tests.kernel._guest import KernelMachine
from volumed.keys.tpm import START_THE_WORLD

if TYPE_CHECKING:
    from tests.kernel._guest import BootResult
    from tests.kernel.assets import KernelAssets

NODE_UUID: Final = "3c1f5a2e-9b7d-4e60-8a41-5d2c6b7e8f90"
TPM_SLOT: Final = 0
STATIC_SLOT: Final = 1
STATIC: Final = "kernel tier: STATE static key"
PBKDF: Final = {"type": "argon2id", "memory": 32, "iterations": 4, "parallel": 1}
CONFIG: Final = [
    {
        "apiVersion": "v1alpha1",
        "kind": "VolumeConfig",
        "name": "STATE",
        "encryption": {
            "provider": "luks2",
            # `tpm: {}`: Talos' default, PCR 7 under the signed PCR 11 policy
            "keys": [{"slot": TPM_SLOT, "tpm": {}}, {"slot": STATIC_SLOT, "static": {"passphrase": STATIC}}],
            "pbkdf": PBKDF,
        },
    },
    {"apiVersion": "v1alpha1", "kind": "VolumeConfig", "name": "EPHEMERAL", "provisioning": {"grow": False}},
]
SYNC_FAILURE: Final = f"STATE key slots not in line with the config: error updating key slot {TPM_SLOT} tpm: "


@pytest.fixture(scope="module")
def uki(tmp_path_factory: pytest.TempPathFactory) -> UKI:
    """The UKI's PCR-signing key and signature JSON (systemd 252 computes the policy in a swtpm session)."""
    directory = tmp_path_factory.mktemp("uki")
    with Swtpm.start(directory / "tpm") as tpm:
        return make_uki(directory / "uki", tpm)


@pytest.fixture(scope="module")
def machine(kernel_assets: KernelAssets, tmp_path_factory: pytest.TempPathFactory) -> KernelMachine:
    """One disk and one TPM state for this module's boots."""
    return KernelMachine(kernel_assets, tmp_path_factory.mktemp("tpm"), tpm=True)


def boot(machine: KernelMachine, uki: UKI, number: int) -> BootResult:
    """Boot ``number`` (1-based) of the sequence, booting the ones before it first; each must pass."""
    while len(machine.boots) < number:
        if machine.boots:
            machine.boots[-1].check()
        params = {
            "config": CONFIG,
            "node_uuid": NODE_UUID,
            "public_key": uki.public_key.read_text(),
            "signature": uki.signature.read_text(),
            "enter_machined": uki.expected_pcr11.hex(),
            "extend_pcr7": len(machine.boots) == 2,
            "device": "/dev/vda2",
            "tpm_slot": TPM_SLOT,
            "static_slot": STATIC_SLOT,
            "static": STATIC,
        }
        machine.boot("tpm_uki_boot", params, time_limit=300)
    return machine.boots[number - 1].check()


def pcr11_after_run(uki: UKI) -> str:
    """PCR 11 once `volumed run --once` exited: start-the-world extended after the signed enter-machined."""
    return hashlib.sha256(uki.expected_pcr11 + hashlib.sha256(START_THE_WORLD.encode()).digest()).hexdigest()


def opened(result: BootResult) -> tuple[str, str]:
    state: dict[str, str] = result.results["table"]["STATE"]
    return state["PHASE"], state["SLOT"]


def tpm_user_data(result: BootResult) -> dict[str, Any]:
    token: dict[str, Any] = result.results["tpm_token"]
    assert (token["type"], token["keyslots"]) == ("talos-tpm2", []), token
    user_data: dict[str, Any] = token["UserData"]
    return user_data


def test_first_boot_enrols_the_tpm_key_as_talos_1_12(machine: KernelMachine, uki: UKI) -> None:
    result = boot(machine, uki, 1)
    assert result.results["run_exit"] == 0
    assert opened(result) == ("ready", str(TPM_SLOT))
    assert result.results["table"]["EPHEMERAL"]["PHASE"] == "ready"
    assert result.results["sync_lines"] == []
    assert result.results["sync_warnings"] == []  # nor after the table was printed
    assert result.results["keyslots"] == [TPM_SLOT, STATIC_SLOT]
    assert result.results["tokens"][str(TPM_SLOT)] == "talos-tpm2"
    assert list(result.results["tokens"].values()).count("talos-tpm2") == 1
    user_data = tpm_user_data(result)
    assert {
        key: user_data.get(key) for key in ("keyslots", "pcrs", "pubkey_pcrs", "alg", "encryption_version")
    } == {
        "keyslots": [TPM_SLOT],
        "pcrs": [7],
        "pubkey_pcrs": [11],
        "alg": "sha256",
        "encryption_version": "1",
    }
    assert result.results["static_accepted"]
    assert result.results["pcr11_after_run"] == pcr11_after_run(uki)


def test_next_boot_opens_through_the_tpm_key(machine: KernelMachine, uki: UKI) -> None:
    result = boot(machine, uki, 2)
    assert result.results["run_exit"] == 0
    assert opened(result) == ("ready", str(TPM_SLOT))
    assert result.results["sync_lines"] == []
    assert result.results["sync_warnings"] == []  # nor after the table was printed
    assert result.results["pcr7_at_boot"] == machine.boots[0].results["pcr7_at_boot"]
    assert result.results["keyslots"] == [TPM_SLOT, STATIC_SLOT]
    assert tpm_user_data(result) == tpm_user_data(machine.boots[0])  # opened, not sealed again
    assert result.results["pcr11_after_run"] == pcr11_after_run(uki)


def test_changed_pcr7_falls_back_to_the_static_key_and_reports_the_tpm_slot(
    machine: KernelMachine, uki: UKI
) -> None:
    result = boot(machine, uki, 3)
    assert result.results["pcr7_extended"] != machine.boots[0].results["pcr7_at_boot"]
    assert result.results["run_exit"] == 0  # a failed key-slot sync does not fail the volume
    assert opened(result) == ("ready", str(STATIC_SLOT))
    [failure] = result.results["sync_lines"]
    assert failure.startswith(SYNC_FAILURE), failure
    assert "PCR policy check failed" in failure, failure
    # the TPM slot and its token are kept, for when PCR 7 is back
    assert result.results["keyslots"] == [TPM_SLOT, STATIC_SLOT]
    assert tpm_user_data(result) == tpm_user_data(machine.boots[0])
    assert result.results["pcr11_after_run"] == pcr11_after_run(uki)
