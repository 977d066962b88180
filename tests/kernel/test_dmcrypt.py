"""dm-crypt in a QEMU guest: our LUKS2 library and ``DmActivator`` against the real kernel, cryptsetup as the
peer; then a second boot of the same disk (scenarios in ``tests/kernel/guest/dm_*.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.kernel._guest import KernelMachine

if TYPE_CHECKING:
    from tests.kernel.assets import KernelAssets

EPHEMERAL = {
    "device": "/dev/vda3",
    "passphrase": "kernel tier: EPHEMERAL passphrase",
    "name": "luks2-EPHEMERAL",
    "file": "first-boot.txt",
    "text": "written on the first boot through dm-crypt set up by DmActivator\n",
}


@pytest.fixture(scope="module")
def machine(kernel_assets: KernelAssets, tmp_path_factory: pytest.TempPathFactory) -> KernelMachine:
    """One disk for this module's boots (first boot, then second boot)."""
    return KernelMachine(kernel_assets, tmp_path_factory.mktemp("dmcrypt"))


def first_boot(machine: KernelMachine) -> None:
    if not machine.boots:
        machine.boot("dm_first_boot", EPHEMERAL)
    machine.boots[0].check()


def test_first_boot_dm_crypt_with_our_library_and_cryptsetup_agrees(machine: KernelMachine) -> None:
    first_boot(machine)
    results = machine.boots[0].results
    # dm-crypt got the key through the kernel keyring, as cryptsetup does it, not in a hex table
    assert results["our_table"]["key"] == "logon:volumed:luks2-EPHEMERAL"
    assert results["cryptsetup_table"]["key"].startswith("logon:cryptsetup:")
    assert results["cryptsetup_status_ours"]["type"] == "LUKS2"
    assert all("create" in call or "mknodes" in call for call in results["dmsetup_calls"])


def test_second_boot_opens_the_same_disk_and_the_file_is_there(machine: KernelMachine) -> None:
    first_boot(machine)
    params = {**EPHEMERAL, "fstype": machine.boots[0].results["fstype"]}
    machine.boot("dm_second_boot", params).check()
