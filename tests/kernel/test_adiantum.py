"""Adiantum (``xchacha12/xchacha20,aes-adiantum-plain64``) in a QEMU guest with the kernel's adiantum and real
dm-crypt: a header cryptsetup made opens with volumed's library and dm activation and shows the bytes
cryptsetup's mapping showed; key slots volumed adds or changes open with cryptsetup; a volume volumed
formats opens with cryptsetup (scenario in ``tests/kernel/guest/adiantum_interop.py``). Then volumed's
subsystem (``tests/kernel/guest/lifecycle_boot.py``) formats, mounts and on a second boot reopens STATE and
EPHEMERAL whose VolumeConfigs ask for adiantum, as Talos on a machine without AES instructions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.kernel._guest import MIB, KernelMachine

if TYPE_CHECKING:
    from pathlib import Path

    from tests.kernel.assets import KernelAssets

XCHACHA12 = "xchacha12,aes-adiantum-plain64"
XCHACHA20 = "xchacha20,aes-adiantum-plain64"
NODE_UUID = "5b0e4c2a-9d1f-4e3b-8a7c-6f5e4d3c2b1a"
PBKDF = {"type": "argon2id", "memory": 32, "iterations": 4, "parallel": 1}
FILES = {"STATE": "STATE on xchacha20 adiantum\n", "EPHEMERAL": "EPHEMERAL on xchacha12 adiantum\n"}
STATIC = "kernel tier: EPHEMERAL adiantum static key"


def adiantum_config() -> list[dict[str, Any]]:
    """STATE with xchacha20 (nodeID), EPHEMERAL with xchacha12 (nodeID in slot 0, static in slot 1); no
    keySize: Talos' default for adiantum, 256 bits."""

    def encryption(cipher: str, *keys: dict[str, Any]) -> dict[str, Any]:
        return {"provider": "luks2", "cipher": cipher, "keys": list(keys), "pbkdf": dict(PBKDF)}

    return [
        {
            "apiVersion": "v1alpha1",
            "kind": "VolumeConfig",
            "name": "STATE",
            "encryption": encryption(XCHACHA20, {"slot": 0, "nodeID": {}}),
        },
        {
            "apiVersion": "v1alpha1",
            "kind": "VolumeConfig",
            "name": "EPHEMERAL",
            "encryption": encryption(
                XCHACHA12, {"slot": 0, "nodeID": {}}, {"slot": 1, "static": {"passphrase": STATIC}}
            ),
        },
    ]


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


def test_volumed_formats_and_reopens_adiantum_volumes_from_the_config(
    kernel_assets: KernelAssets, tmp_path: Path
) -> None:
    machine = KernelMachine(kernel_assets, tmp_path / "node", tpm=True, data_disk_size=64 * MIB)
    passphrases = [
        ["EPHEMERAL", 0, f"{NODE_UUID}EPHEMERAL", True],
        ["EPHEMERAL", 1, STATIC, True],
        ["STATE", 0, f"{NODE_UUID}STATE", True],
    ]
    first = machine.boot(
        "lifecycle_boot",
        {"config": adiantum_config(), "node_uuid": NODE_UUID, "write": FILES, "passphrases": passphrases},
        time_limit=600,
    ).check()
    for volume, cipher in (("STATE", XCHACHA20), ("EPHEMERAL", XCHACHA12)):
        view = first.results["cryptsetup"][volume]
        assert view["cipher"] == cipher
        assert view["status"]["keysize"] == "256 bits"
        assert first.results["dm_tables"][volume]["cipher"] == cipher
        assert first.results["statuses"][volume]["phase"] == "ready"
    assert first.results["cryptsetup"]["EPHEMERAL"]["keyslots"] == [0, 1]
    second = machine.boot(
        "lifecycle_boot",
        {"config": adiantum_config(), "node_uuid": NODE_UUID, "expect_files": FILES},
        time_limit=600,
    ).check()
    assert second.results["files_read"] == FILES
    for volume in ("STATE", "EPHEMERAL"):
        assert second.results["statuses"][volume]["phase"] == "ready"
