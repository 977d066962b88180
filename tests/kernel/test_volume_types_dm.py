"""The volume types of issue 17 on the dm path: two boots of one guest (backend ``dm``, real dm-crypt, the
guest's virtio disks) whose config holds an encrypted RawVolumeConfig and SwapVolumeConfig, a directory and
an encrypted whole-disk UserVolumeConfig, and a read-only ExistingVolumeConfig over an ext4 that mkfs.ext4
made in the guest (scenario ``tests/kernel/guest/volume_types_dm.py``).

The system tier runs the same types on image files with the fuse backend; here the kernel's dm-crypt, swap
and partitions are the real ones. Boot 1 makes everything and writes; boot 2 finds it all again, formats
nothing and reads what boot 1 wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import pytest

from tests._tools import require_tool
from tests.kernel._guest import MIB, KernelMachine

if TYPE_CHECKING:
    from tests.kernel._guest import BootResult
    from tests.kernel.assets import KernelAssets

PASSPHRASE: Final = "kernel tier: volume types on dm"
PBKDF: Final = {"type": "argon2id", "memory": 32, "iterations": 4, "parallel": 1}
DATA_DISK_SIZE: Final = 256 * MIB
BLANK_DISK_SIZE: Final = 128 * MIB
GUEST_TOOLS: Final = ("sfdisk", "blockdev", "mkfs.ext4", "mkswap", "swapon", "swapoff", "blkid", "cryptsetup")
ARCHIVE_TEXT: Final = "made by mkfs.ext4 in the guest before volumed started\n"
TEXTS: Final = {"u-cache": "on the directory volume\n", "u-whole": "on the disk volume\n"}


def encryption() -> dict[str, Any]:
    return {
        "provider": "luks2",
        "keys": [{"slot": 0, "static": {"passphrase": PASSPHRASE}}],
        "pbkdf": dict(PBKDF),
    }


def on_data_disk(kind: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1alpha1",
        "kind": kind,
        "name": name,
        "provisioning": {
            "diskSelector": {"match": 'disk.dev_path == "/dev/vdb"'},
            "minSize": "24MiB",
            "maxSize": "32MiB",
        },
        "encryption": encryption(),
    }


CONFIG: Final[list[dict[str, Any]]] = [
    # Talos' machine.features.diskQuotaSupport: EPHEMERAL (xfs) is mounted with prjquota (the guest's Debian
    # kernel has CONFIG_XFS_QUOTA; this machine's host kernel has not, so only the guest can show the mount)
    {"version": "v1alpha1", "machine": {"type": "worker", "features": {"diskQuotaSupport": True}}},
    {"apiVersion": "v1alpha1", "kind": "VolumeConfig", "name": "STATE"},
    {"apiVersion": "v1alpha1", "kind": "VolumeConfig", "name": "EPHEMERAL"},
    on_data_disk("RawVolumeConfig", "secret"),
    on_data_disk("SwapVolumeConfig", "swap"),
    {"apiVersion": "v1alpha1", "kind": "UserVolumeConfig", "name": "cache", "volumeType": "directory"},
    {
        "apiVersion": "v1alpha1",
        "kind": "UserVolumeConfig",
        "name": "whole",
        "volumeType": "disk",
        "provisioning": {"diskSelector": {"match": 'disk.dev_path == "/dev/vdc"'}},
        "filesystem": {"type": "xfs"},
        "encryption": encryption(),
    },
    {
        "apiVersion": "v1alpha1",
        "kind": "ExistingVolumeConfig",
        "name": "archive",
        "discovery": {
            "volumeSelector": {"match": 'volume.partition_label == "archive" && volume.name == "extfs"'}
        },
        "mount": {"readOnly": True},
    },
]
TIME_LIMIT: Final = 420.0


@pytest.fixture(scope="module")
def machine(kernel_assets: KernelAssets, tmp_path_factory: pytest.TempPathFactory) -> KernelMachine:
    """One node for both boots: the system disk, a data disk (empty GPT) and a blank disk; no TPM."""
    for tool in GUEST_TOOLS:
        require_tool(tool)
    return KernelMachine(
        kernel_assets,
        tmp_path_factory.mktemp("volume-types-dm"),
        data_disk_size=DATA_DISK_SIZE,
        blank_disk_size=BLANK_DISK_SIZE,
    )


def boot(machine: KernelMachine, number: int) -> BootResult:
    """Boot ``number`` (1 or 2), booting the first one first; each must pass."""
    while len(machine.boots) < number:
        if not machine.boots:
            params: dict[str, Any] = {"config": CONFIG, "passphrase": PASSPHRASE, "first": True}
        else:
            first = machine.boots[0].check().results
            expect = {
                "archive_sha256": first["archive_sha256_before"],
                "raw_sha256": first["raw"]["sha256"],
            }
            params = {"config": CONFIG, "passphrase": PASSPHRASE, "expect": expect}
        machine.boot("volume_types_dm", params, time_limit=TIME_LIMIT)
    return machine.boots[number - 1].check()


def test_every_volume_type_is_ready_on_dm_and_nothing_is_left_at_stop(machine: KernelMachine) -> None:
    for number in (1, 2):
        results = boot(machine, number).results
        statuses = results["statuses"]
        assert {v: s["phase"] for v, s in statuses.items()} == {
            v: "ready"
            for v in ("EPHEMERAL", "STATE", "e-archive", "r-secret", "s-swap", "u-cache", "u-whole")
        }, f"boot {number}"
        assert results["shutdown"] == {
            "mounts": [],
            "dm_devices": [],
            "dmsetup_ls_luks2": [],
            "mapper_nodes": [],
        }, f"boot {number}"
        assert results["swaps_after_stop"] == [], f"boot {number}: swapoff at stop"


def test_encrypted_raw_volume_bytes_read_back_through_cryptsetup(machine: KernelMachine) -> None:
    first, second = boot(machine, 1).results, boot(machine, 2).results
    for results in (first, second):
        raw = results["raw"]
        assert raw["filesystem"] == "none"
        assert raw["blkid_type"] == ""  # no filesystem made on the raw volume's mapping
        assert raw["table"]["target"] == "crypt"
        assert raw["table"]["cipher"] == "aes-xts-plain64"
        assert raw["table"]["key"] == "logon:volumed:luks2-r-secret"
        assert raw["status"]["type"] == "LUKS2"
        # what volumed's mapping held, cryptsetup's own mapping of the partition shows
        assert results["raw_through_cryptsetup"] == first["raw"]["sha256"]
    assert second["raw"]["sha256"] == first["raw"]["sha256"]  # kept: never formatted again


def test_encrypted_swap_is_on_over_its_dm_device_and_off_at_stop(machine: KernelMachine) -> None:
    first, second = boot(machine, 1).results, boot(machine, 2).results
    for results in (first, second):
        swap = results["swap"]
        assert swap["filesystem"] == "swap"
        assert swap["table"]["target"] == "crypt"
        assert swap["status"]["type"] == "LUKS2"
        assert swap["partition_blkid_type"] in ("crypto_LUKS", "")  # "" when addressed as a disk region
        # one swap area, the mapping's (swapon --show, /proc/swaps and the SwapStatus resource agree)
        assert list(swap["swapon_show"].values()) == [True], swap["swapon_show"]
        assert swap["proc_swaps"] == swap["swapon_show"] == swap["swap_statuses"]
        assert swap["uuid"]
        assert results["swaps_after_stop"] == []
    assert second["swap"]["uuid"] == first["swap"]["uuid"]  # the swap area is kept, not made again


def test_directory_volume_is_on_ephemeral_and_keeps_its_file_across_boots(machine: KernelMachine) -> None:
    for number in (1, 2):
        directory = boot(machine, number).results["directory"]
        assert directory["is_dir"], directory
        assert directory["on_ephemeral"], directory
        assert directory["mode"] == "0o755"
        assert directory["bind_root"] == "/mnt/cache"
        assert directory["ephemeral_location"] == "/dev/vda3"
        assert directory["file"] == TEXTS["u-cache"]  # boot 2 reads what boot 1 wrote


def test_ephemeral_is_mounted_with_project_quota(machine: KernelMachine) -> None:
    """diskQuotaSupport: true in the machine config: /proc/mounts shows EPHEMERAL's xfs with prjquota."""
    for number in (1, 2):
        mounts = boot(machine, number).results["ephemeral_mount"]
        assert len(mounts) == 1, mounts
        fstype, options = mounts[0]
        assert fstype == "xfs"
        assert "prjquota" in options.split(","), options


def test_disk_volume_is_luks2_on_the_whole_blank_virtio_disk(machine: KernelMachine) -> None:
    first, second = boot(machine, 1).results, boot(machine, 2).results
    for results in (first, second):
        disk = results["disk"]
        assert (disk["location"], disk["offset"], disk["partition_index"]) == ("/dev/vdc", 0, 0)
        assert (disk["blkid_type"], disk["blkid_pttype"]) == ("crypto_LUKS", "")  # no partition table
        assert disk["table"]["target"] == "crypt"
        assert disk["status"]["type"] == "LUKS2"
        assert (disk["filesystem"], disk["fstype"]) == ("xfs", "xfs")
        assert disk["file"] == TEXTS["u-whole"]
    assert second["disk"]["uuid"] == first["disk"]["uuid"]  # the LUKS2 header is kept


def test_existing_volume_is_mounted_read_only_and_its_partition_never_changes(machine: KernelMachine) -> None:
    first, second = boot(machine, 1).results, boot(machine, 2).results
    digest = first["archive_sha256_before"]
    for results in (first, second):
        existing = results["existing"]
        assert (existing["location"], existing["offset"]) == (results["archive_node"], 0)
        assert results["archive_node"] == "/dev/vdb1"
        assert existing["filesystem"] == existing["fstype"] == "ext4"
        assert existing["source_is_location"]
        assert "ro" in existing["options"]
        assert existing["write_refused_with"] == "EROFS"
        assert existing["text"] == ARCHIVE_TEXT
        assert results["archive_sha256_before"] == results["archive_sha256_after"] == digest
