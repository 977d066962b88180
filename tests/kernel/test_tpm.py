"""The TPM key in a QEMU guest with swtpm as its TPM (``/dev/tpmrm0``): sealed and enrolled on the first boot,
unsealed on a reboot with the same TPM state, refused with "PCR policy check failed" once PCR 7 changed
(scenarios in ``tests/kernel/guest/tpm_*.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.kernel._guest import KernelMachine

if TYPE_CHECKING:
    from tests.kernel.assets import KernelAssets

STATE = {
    "device": "/dev/vda2",
    "name": "luks2-STATE",
    "recovery": "kernel tier: STATE recovery passphrase",
    "file": "sealed.txt",
    "text": "opened with a key sealed to PCR 7\n",
}


@pytest.fixture(scope="module")
def machine(kernel_assets: KernelAssets, tmp_path_factory: pytest.TempPathFactory) -> KernelMachine:
    """One disk and one TPM state for this module's boots."""
    return KernelMachine(kernel_assets, tmp_path_factory.mktemp("tpm"), tpm=True)


def enrolled(machine: KernelMachine) -> str:
    """Boot 1 (enroll) once; PCR 7 as the guest read it."""
    if not machine.boots:
        machine.boot("tpm_enroll", STATE)
    return str(machine.boots[0].check().results["pcr7"])


def test_tpm_key_enrolled_on_first_boot_unseals_after_a_reboot(machine: KernelMachine) -> None:
    pcr7 = enrolled(machine)
    machine.boot("tpm_unseal", {**STATE, "pcr7": pcr7}).check()


def test_changed_pcr7_fails_the_tpm_key_clearly_and_the_recovery_key_opens(machine: KernelMachine) -> None:
    pcr7 = enrolled(machine)
    boot = machine.boot("tpm_pcr_changed", {**STATE, "pcr7": pcr7}).check()
    assert "PCR policy check failed" in boot.results["tpm_error"]
    assert boot.results["pcr7_after_extend"] != pcr7
