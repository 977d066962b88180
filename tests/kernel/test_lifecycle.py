"""volumed as the volume subsystem of a booting guest: five boots of one machine (two virtio disks, one swtpm
state) with the ``dm`` backend, the TPM through ``/dev/tpmrm0`` and the node's disks found through sysfs
(scenario ``tests/kernel/guest/lifecycle_boot.py``; each boot also checks that nothing is left after
shutdown).

1. first boot: STATE (nodeID), EPHEMERAL (TPM, PCR 7, slot 0; nodeID slot 1) and a user volume (static,
   lockToSTATE, provisioned on the second disk by ``!system_disk``) are encrypted, formatted, mounted and
   written to; cryptsetup agrees with each VolumeStatus.
2. second boot: everything opens (EPHEMERAL through the TPM), the files are there, one KDF run per volume.
3. PCR 7 extended before the subsystem starts: the TPM key fails and is reported, nodeID opens EPHEMERAL.
4. and 5. key rotation of the user volume: a key added (boot 4), the old key removed (boot 5, by
   `volumed run --once` first, then the subsystem in process again).

EPHEMERAL's config gives dm-crypt's perf ``options`` and ``allowDiscards`` (in its dm table, in no other
volume's), and between boots 1 and 2 the host makes the system disk image 128 MiB larger: boot 2 grows
EPHEMERAL (partition, dm mapping, xfs) before mounting it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Final

import pytest

from tests.kernel._guest import MIB, KernelMachine

if TYPE_CHECKING:
    from tests.kernel._guest import BootResult
    from tests.kernel.assets import KernelAssets

NODE_UUID: Final = "8d7b6c1e-3f2a-4b5c-9d0e-1f2a3b4c5d6e"
PBKDF: Final = {"type": "argon2id", "memory": 32, "iterations": 4, "parallel": 1}
VOLUMES: Final = ("EPHEMERAL", "STATE", "u-data")
FILES: Final = {volume: f"written on the first boot to {volume} through dm-crypt\n" for volume in VOLUMES}
PERF_OPTIONS: Final = ["no_read_workqueue", "no_write_workqueue", "same_cpu_crypt"]
DM_FLAGS: Final = {"allow_discards", *PERF_OPTIONS}
DISK_GROWTH: Final = 128 * MIB


def key(slot: int, **kind: Any) -> dict[str, Any]:
    return {"slot": slot, **kind}


def static(slot: int, passphrase: str) -> dict[str, Any]:
    return key(slot, static={"passphrase": passphrase}, lockToSTATE=True)


def config(*data_keys: dict[str, Any]) -> list[dict[str, Any]]:
    """STATE (nodeID), EPHEMERAL (TPM PCR 7 in slot 0, nodeID fallback in slot 1), user volume ``data``."""

    def encryption(*keys: dict[str, Any]) -> dict[str, Any]:
        return {"provider": "luks2", "keys": list(keys), "pbkdf": dict(PBKDF)}

    return [
        {
            "apiVersion": "v1alpha1",
            "kind": "VolumeConfig",
            "name": "STATE",
            "encryption": encryption(key(0, nodeID={})),
        },
        {
            "apiVersion": "v1alpha1",
            "kind": "VolumeConfig",
            "name": "EPHEMERAL",
            "encryption": {
                **encryption(
                    key(0, tpm={"options": {"pcrs": [7], "volumedPcrOnly": True}}),  # no UKI in the guest
                    key(1, nodeID={}),
                ),
                "options": list(PERF_OPTIONS),
                "allowDiscards": True,
            },
        },
        {
            "apiVersion": "v1alpha1",
            "kind": "UserVolumeConfig",
            "name": "data",
            "provisioning": {"diskSelector": {"match": "!system_disk"}, "minSize": "64MiB", "grow": True},
            "filesystem": {"type": "auto"},
            "encryption": encryption(*data_keys),
        },
    ]


OLD, NEW = static(0, "user volume: old key"), static(1, "user volume: new key")
NODE_ID_KEYS: Final = [
    # Talos' nodeID passphrase: the node UUID followed by the volume id; cryptsetup takes it for that slot
    ["STATE", 0, f"{NODE_UUID}STATE", True],
    ["EPHEMERAL", 1, f"{NODE_UUID}EPHEMERAL", True],
    ["EPHEMERAL", 0, f"{NODE_UUID}EPHEMERAL", False],
]
BOOTS: Final[list[dict[str, Any]]] = [
    {"config": config(OLD), "write": FILES, "conflict_check": True, "passphrases": NODE_ID_KEYS},
    {"config": config(OLD), "expect_files": FILES, "grow_disk": DISK_GROWTH},
    {"config": config(OLD), "expect_files": FILES, "extend_pcr7": True, "passphrases": NODE_ID_KEYS},
    {"config": config(OLD, NEW), "expect_files": FILES},
    {
        "config": config(NEW),
        "expect_files": FILES,
        "cli_first": True,
        # locked to STATE: the configured passphrase alone opens no slot of the user volume
        "passphrases": [["u-data", 1, NEW["static"]["passphrase"], False]],
    },
]


@pytest.fixture(scope="module")
def machine(kernel_assets: KernelAssets, tmp_path_factory: pytest.TempPathFactory) -> KernelMachine:
    """One node for the module's boots: the system disk, a 256 MiB data disk and a TPM."""
    return KernelMachine(
        kernel_assets, tmp_path_factory.mktemp("lifecycle"), tpm=True, data_disk_size=256 * MIB
    )


def boot(machine: KernelMachine, number: int) -> BootResult:
    """Boot ``number`` (1-based) of the sequence, booting the ones before it first; each must pass."""
    while len(machine.boots) < number:
        index = len(machine.boots)
        if index:
            machine.boots[-1].check()
        if BOOTS[index].get("grow_disk"):  # the host enlarges the powered-off node's disk image
            os.truncate(machine.disk, machine.disk.stat().st_size + BOOTS[index]["grow_disk"])
        machine.boot("lifecycle_boot", {**BOOTS[index], "node_uuid": NODE_UUID}, time_limit=300)
    return machine.boots[number - 1].check()


def statuses(result: BootResult) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = result.results["statuses"]
    return found


def keyslots(result: BootResult) -> dict[str, list[int]]:
    return {volume: view["keyslots"] for volume, view in result.results["cryptsetup"].items()}


def test_first_boot_encrypts_formats_and_mounts_every_volume_and_cryptsetup_agrees(
    machine: KernelMachine,
) -> None:
    result = boot(machine, 1)
    status = statuses(result)
    assert sorted(status) == list(VOLUMES)
    assert {
        v: (s["phase"], s["encryption_slot"], s["encryption_failed_syncs"]) for v, s in status.items()
    } == {v: ("ready", 0, []) for v in VOLUMES}
    assert status["STATE"]["location"] == "/dev/vda2"
    assert status["EPHEMERAL"]["location"] == "/dev/vda3"
    # provisioned on the second disk by `!system_disk`: partition 1 of /dev/vdb (named /dev/vdb1 once
    # discovery saw the new partition node, else /dev/vdb at the partition's offset)
    data = status["u-data"]
    assert (data["location"], data["offset"]) in (("/dev/vdb1", 0), ("/dev/vdb", MIB)), data
    assert data["partition_index"] == 1
    assert result.results["cryptsetup"]["u-data"]["disk_position"] == ["vdb", MIB + 16 * MIB]
    assert status["u-data"]["locked_to_state"]
    assert status["u-data"]["filesystem"] == "xfs"  # the initramfs loads the xfs module
    assert status["EPHEMERAL"]["tpm_pcrs"] == [7]
    assert status["EPHEMERAL"]["configured_encryption_keys"] == ["tpm", "nodeID"]
    views = result.results["cryptsetup"]
    assert keyslots(result) == {"EPHEMERAL": [0, 1], "STATE": [0], "u-data": [0]}
    # the TPM key's token has the id of its slot and, as Talos writes it, an empty keyslots list; token 31
    # holds volumed's key-slot fingerprints (storage/slotcheck.py)
    assert views["EPHEMERAL"]["tokens"] == {"0": "talos-tpm2", "31": "volumed-slot-check"}
    assert views["EPHEMERAL"]["token_keyslots"]["0"] == []
    for volume in VOLUMES:
        assert views[volume]["cipher"] == "aes-xts-plain64"
        assert views[volume]["kdf"] == ["argon2id"]
        assert views[volume]["status"]["type"] == "LUKS2"
    assert sorted(result.results["mounts"]) == list(VOLUMES)
    assert "luks2-EPHEMERAL is already active for another volume" in result.results["conflict"]


def test_config_dm_crypt_flags_are_in_that_volumes_dm_table_only(machine: KernelMachine) -> None:
    result = boot(machine, 1)
    tables = result.results["dm_tables"]
    assert sorted(tables) == list(VOLUMES)
    ephemeral = tables["EPHEMERAL"]["options"].split()
    # dm-crypt's table: the count of optional arguments, then the flags and sector_size:N
    assert set(ephemeral) >= DM_FLAGS, ephemeral
    assert int(ephemeral[0]) == len(ephemeral) - 1, ephemeral
    flags = result.results["cryptsetup"]["EPHEMERAL"]["status"]["flags"].split()
    assert set(flags) == {"discards", *PERF_OPTIONS}, flags
    for volume in ("STATE", "u-data"):
        assert not set(tables[volume]["options"].split()) & DM_FLAGS, (volume, tables[volume])
        assert "flags" not in result.results["cryptsetup"][volume]["status"], volume
    assert statuses(result)["EPHEMERAL"]["encryption_ignored_options"] == []


def test_second_boot_opens_everything_through_the_tpm_with_one_kdf_run_per_volume(
    machine: KernelMachine,
) -> None:
    result = boot(machine, 2)
    status = statuses(result)
    assert {
        v: (s["phase"], s["encryption_slot"], s["encryption_failed_syncs"]) for v, s in status.items()
    } == {v: ("ready", 0, []) for v in VOLUMES}
    assert result.results["kdf_runs"] == dict.fromkeys(VOLUMES, 1)
    assert keyslots(result) == {"EPHEMERAL": [0, 1], "STATE": [0], "u-data": [0]}
    assert statuses(result)["u-data"]["location"] == "/dev/vdb1"  # the kernel read the new table at boot
    assert result.results["pcr7_at_boot"] == machine.boots[0].results["pcr7_at_boot"]


def test_ephemeral_grows_on_dm_after_the_disk_image_grew(machine: KernelMachine) -> None:
    first, grown = boot(machine, 1).results, boot(machine, 2).results
    before, after = first["ephemeral_sizes"], grown["ephemeral_sizes"]
    assert after["disk"] == before["disk"] + DISK_GROWTH
    # the partition took the new space (up to its last 1 MiB boundary before the moved backup GPT)
    assert DISK_GROWTH - MIB <= after["gpt"] - before["gpt"] <= DISK_GROWTH, (before, after)
    for sizes in (before, after):
        # the kernel's partition (BLKPG), the status, the mapping (data offset 16 MiB) and xfs follow the GPT
        assert sizes["kernel_partition"] == sizes["status"] == sizes["gpt"], sizes
        assert sizes["mapping"] == sizes["gpt"] - 16 * MIB, sizes
        assert sizes["mapping"] - 4 * MIB < sizes["xfs"] <= sizes["mapping"], sizes
    table = grown["dm_tables"]["EPHEMERAL"]
    assert int(table["sectors"]) * 512 == after["mapping"]
    # the resize keeps the flags and the key of the mapping
    assert {k: v for k, v in table.items() if k != "sectors"} == {
        k: v for k, v in first["dm_tables"]["EPHEMERAL"].items() if k != "sectors"
    }
    assert grown["files_read"]["EPHEMERAL"] == FILES["EPHEMERAL"]  # written in boot 1, before the grow
    assert statuses(machine.boots[1])["EPHEMERAL"]["phase"] == "ready"


def test_changed_pcr7_fails_the_tpm_key_and_node_id_opens_ephemeral(machine: KernelMachine) -> None:
    result = boot(machine, 3)
    ephemeral = statuses(result)["EPHEMERAL"]
    assert (ephemeral["phase"], ephemeral["encryption_slot"]) == ("ready", 1)
    failed = ephemeral["encryption_failed_syncs"]
    assert len(failed) == 1, failed
    assert failed[0].startswith("error updating key slot 0 tpm:"), failed
    assert "PCR policy check failed" in failed[0], failed
    assert keyslots(result)["EPHEMERAL"] == [0, 1]  # the TPM slot is kept for when PCR 7 is back
    assert result.results["kdf_runs"]["EPHEMERAL"] == 1  # the TPM refused before any KDF ran


def test_key_rotation_across_boots_with_dm(machine: KernelMachine) -> None:
    added = boot(machine, 4)
    data = statuses(added)["u-data"]
    assert (data["encryption_slot"], data["encryption_failed_syncs"]) == (0, [])
    assert data["configured_encryption_keys"] == ["static", "static"]
    assert keyslots(added)["u-data"] == [0, 1]
    # PCR 7 measured as at enrollment again: the TPM key opens EPHEMERAL
    assert statuses(added)["EPHEMERAL"]["encryption_slot"] == 0

    removed = boot(machine, 5)
    assert removed.results["cli_exit"] == 0
    data = statuses(removed)["u-data"]
    assert (data["encryption_slot"], data["encryption_failed_syncs"]) == (1, [])
    assert data["configured_encryption_keys"] == ["static"]
    assert keyslots(removed)["u-data"] == [1]
    assert removed.results["kdf_runs"] == dict.fromkeys(VOLUMES, 1)


def test_shutdown_leaves_no_mount_no_dm_device_and_no_stale_mapper_node(machine: KernelMachine) -> None:
    boot(machine, len(BOOTS))
    nothing: dict[str, list[str]] = {
        "mounts": [],
        "dm_devices": [],
        "dmsetup_ls_luks2": [],
        "mapper_nodes": [],
    }
    for number, result in enumerate(machine.boots, start=1):
        assert result.results["shutdown"] == nothing, f"boot {number}"
    assert machine.boots[-1].results["cli_shutdown"] == nothing
