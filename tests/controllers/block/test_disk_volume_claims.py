"""Which whole disk a disk volume gets (`DiskClaims`): Talos' errors when its selector matches no disk or
several, and volumed's refusals of a disk that is the system disk, holds another configured volume, or is
another disk volume's (the one ready on it keeps it, else the first by id)."""

from __future__ import annotations

import pytest

from volumed.controllers.block._disk_volume import DiskClaims, DiskVolumeError, whole_disk
from volumed.resources import (
    DiscoveredVolumeSpec,
    DiskSpec,
    ProvisioningConfigSpec,
    VolumeConfigSpec,
    VolumeType,
)

GIB = 1024**3
SYSTEM = DiskSpec(dev_path="/dev/sda", size=64 * GIB)
DATA = DiskSpec(dev_path="/dev/sdb", size=200 * GIB)
OTHER = DiskSpec(dev_path="/dev/sdc", size=500 * GIB)
DISKS = [SYSTEM, DATA, OTHER]
META = DiscoveredVolumeSpec(dev_path="/dev/sda3", parent="/dev/sda", size=1 << 20, partition_label="META")


def disk_volume(match: str) -> VolumeConfigSpec:
    return VolumeConfigSpec(
        partition_label="",
        volume_type=VolumeType.DISK,
        provisioning=ProvisioningConfigSpec(disk_selector=match),
        mount_target="/var/mnt/x",
    )


def claims(
    configs: dict[str, VolumeConfigSpec],
    discovered: list[DiscoveredVolumeSpec] | None = None,
    ready_on: dict[str, str] | None = None,
    disks: list[DiskSpec] | None = None,
) -> DiskClaims:
    return DiskClaims(
        configs,
        [META, *(discovered or [])],
        DISKS if disks is None else disks,
        system_disk="/dev/sda",
        ready_on=ready_on or {},
    )


def refusal(found: DiskClaims, volume_id: str) -> DiskVolumeError:
    with pytest.raises(DiskVolumeError) as raised:
        found.take(volume_id)
    return raised.value


def test_the_one_matching_disk_is_taken() -> None:
    found = claims({"u-a": disk_volume("disk.size == 200u * GiB")})
    assert found.take("u-a") == DATA
    assert found.reserved == frozenset({"/dev/sdb"})  # no partition volume is made there


def test_no_match_and_several_matches_fail_with_talos_words() -> None:
    found = claims({"u-none": disk_volume("disk.size == 1u"), "u-many": disk_volume("!system_disk")})
    none = refusal(found, "u-none")
    assert (str(none), none.retryable) == ("no disks matched selector for volume", True)
    many = refusal(found, "u-many")
    assert str(many) == "multiple disks matched locator for disk volume; matched disks: [/dev/sdb /dev/sdc]"
    assert not many.retryable
    assert found.reserved == frozenset()


def test_the_system_disk_is_never_taken() -> None:
    found = claims({"u-a": disk_volume("system_disk")})
    error = refusal(found, "u-a")
    assert str(error) == "the disk /dev/sda is the system disk (it holds META): a disk volume never takes it"
    assert found.reserved == frozenset()


def test_a_disk_holding_another_configured_volume_is_not_taken() -> None:
    user = VolumeConfigSpec(partition_label="u-data", mount_target="/var/mnt/data")
    partition = DiscoveredVolumeSpec(
        dev_path="/dev/sdb1", parent="/dev/sdb", size=GIB, partition_label="u-data"
    )
    found = claims({"u-a": disk_volume("disk.size == 200u * GiB"), "u-data": user}, [partition])
    assert str(refusal(found, "u-a")) == (
        "the disk /dev/sdb holds the volume u-data of this config: a disk volume never takes it"
    )
    assert found.reserved == frozenset()  # u-data's disk stays open to u-data's provisioning


def test_a_disk_an_existing_volume_matches_is_not_taken() -> None:
    existing = VolumeConfigSpec(partition_label="", locator_match='volume.name == "extfs"', filesystem="")
    ext4 = DiscoveredVolumeSpec(dev_path="/dev/sdc", size=500 * GIB, name="ext4")
    found = claims({"u-a": disk_volume("disk.size == 500u * GiB"), "e-old": existing}, [ext4])
    assert "holds the volume e-old" in str(refusal(found, "u-a"))


def test_two_disk_volumes_on_one_disk_the_ready_one_keeps_it() -> None:
    configs = {"u-a": disk_volume("disk.size == 500u * GiB"), "u-b": disk_volume("disk.size == 500u * GiB")}
    first = claims(configs)
    assert first.take("u-a") == OTHER
    assert str(refusal(first, "u-b")) == "the disk /dev/sdc is the disk volume u-a's"
    later = claims(configs, ready_on={"u-b": "/dev/sdc"})
    assert later.take("u-b") == OTHER
    assert str(refusal(later, "u-a")) == "the disk /dev/sdc is the disk volume u-b's"


def test_a_disk_a_volume_is_ready_on_stays_its_own_when_its_selector_moves() -> None:
    """u-a is ready on /dev/sdc and now selects /dev/sdb; u-b now selects /dev/sdc: u-b does not get it (it
    would mount the same filesystem a second time, or be refused by the blank check)."""
    configs = {"u-a": disk_volume("disk.size == 200u * GiB"), "u-b": disk_volume("disk.size == 500u * GiB")}
    found = claims(configs, ready_on={"u-a": "/dev/sdc"})
    assert str(refusal(found, "u-b")) == "the disk /dev/sdc is the disk volume u-a's"
    assert found.moved("u-a", "/dev/sdc") is not None
    assert found.reserved == frozenset({"/dev/sdb", "/dev/sdc"})
    user = VolumeConfigSpec(partition_label="u-part", mount_target="/var/mnt/part")
    partition = claims(
        {"u-a": disk_volume("disk.size == 500u * GiB"), "u-part": user}, ready_on={"u-part": "/dev/sdc"}
    )
    assert partition.take("u-a") == OTHER  # only disk volumes' locations count as theirs


def test_a_read_only_disk_is_not_taken() -> None:
    readonly = DATA.model_copy(update={"readonly": True})
    found = claims({"u-a": disk_volume("disk.size == 200u * GiB")}, disks=[SYSTEM, readonly])
    assert str(refusal(found, "u-a")) == "the disk /dev/sdb is read-only"


def test_whole_disk_carries_what_discovery_probed() -> None:
    probed = DiscoveredVolumeSpec(dev_path="/dev/sdb", size=200 * GIB, name="xfs", uuid="u", label="l")
    volume = whole_disk(DATA, [META, probed])
    assert (volume.dev_path, volume.parent, volume.offset, volume.size) == ("/dev/sdb", "", 0, 200 * GIB)
    assert (volume.name, volume.uuid, volume.label, volume.partition_index) == ("xfs", "u", "l", 0)


def test_a_ready_volume_is_told_when_the_selector_now_chooses_another_disk() -> None:
    config = disk_volume("disk.size == 500u * GiB")
    found = claims({"u-a": config}, ready_on={"u-a": "/dev/sdb"})
    assert found.moved("u-a", "/dev/sdc") is None
    assert found.moved("u-a", "/dev/sdb") == (
        "the disk selector changed (it selects the disk /dev/sdc), the volume stays on /dev/sdb"
    )
    none = claims({"u-a": disk_volume("disk.size == 1u")})
    assert none.moved("u-a", "/dev/sdb") == (
        "the disk selector changed (no disks matched selector for volume), the volume stays on /dev/sdb"
    )


def test_a_ready_disk_volume_keeps_its_disk_when_an_existing_selector_matches_its_filesystem() -> None:
    existing = VolumeConfigSpec(partition_label="", locator_match='volume.name == "xfs"', filesystem="")
    xfs = DiscoveredVolumeSpec(dev_path="/dev/sdc", size=500 * GIB, name="xfs")
    configs = {"u-a": disk_volume("disk.size == 500u * GiB"), "e-x": existing}
    ready = claims(configs, [xfs], ready_on={"u-a": "/dev/sdc"})
    assert ready.take("u-a") == OTHER
    assert ready.ready_on("/dev/sdc") == "u-a"  # the existing volume is refused on it (formatter)
    assert ready.reserved == frozenset({"/dev/sdc"})
    fresh = claims(configs, [xfs])  # not ready: the filesystem found there is the existing volume's
    assert "holds the volume e-x" in str(refusal(fresh, "u-a"))
    assert fresh.ready_on("/dev/sdc") is None
