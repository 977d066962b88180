"""Adiantum (``xchacha12/xchacha20,aes-adiantum-plain64``) in a QEMU guest with the kernel's adiantum and real
dm-crypt: a header cryptsetup made opens with volumed's library and dm activation and shows the bytes
cryptsetup's mapping showed; key slots volumed adds or changes open with cryptsetup; a volume volumed
formats opens with cryptsetup (scenario in ``tests/kernel/guest/adiantum_interop.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.kernel._guest import KernelMachine

if TYPE_CHECKING:
    from pathlib import Path

    from tests.kernel.assets import KernelAssets

XCHACHA12 = "xchacha12,aes-adiantum-plain64"
XCHACHA20 = "xchacha20,aes-adiantum-plain64"


def test_adiantum_volumes_interoperate_with_cryptsetup_on_dm_crypt(
    kernel_assets: KernelAssets, tmp_path: Path
) -> None:
    machine = KernelMachine(kernel_assets, tmp_path / "adiantum")
    params = {"device": "/dev/vda3", "other_device": "/dev/vda2", "passphrase": "kernel tier: adiantum"}
    results = machine.boot("adiantum_interop", params, time_limit=900).check().results
    # cryptsetup encrypts the key slot area with the segment cipher: volumed needs adiantum to unlock at all
    assert results["cryptsetup_keyslot_area_cipher"] == [XCHACHA12]
    assert results["area_encryption"] == XCHACHA12
    assert results["volumed_view"] == results["cryptsetup_view"]
    assert results["tables"]["ours"]["cipher"] == results["tables"]["cryptsetup"]["cipher"]
    assert results["test_passphrase_codes"]["slot3"] == 0
    assert results["test_passphrase_codes"]["slot0_changed"] == 0
    assert results["test_passphrase_codes"]["old_passphrase"] != 0
    assert results["test_passphrase_codes"]["slot3_killed"] != 0
    assert set(results["volumed_format_dump_ciphers"]) == {XCHACHA20}
    views = results["xchacha20_views"]
    assert views["volumed"] == views["cryptsetup"]
