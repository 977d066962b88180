"""A ready existing volume keeps the bytes it is mounted from until the next start (review30 F1, F2): a disk
volume is refused its disk, a volume located by the label of its partition is refused the partition, and
the existing volume itself is not refused it when such a volume is configured later."""

from __future__ import annotations

import anyio
import pytest

from volumed.controllers.block._disk_volume import DiskClaims, DiskVolumeError
from volumed.controllers.block._existing import ExistingVolumeError, held_by_ready, refuse_taken_region
from volumed.resources import (
    DiscoveredVolumeSpec,
    DiskSpec,
    ProvisioningConfigSpec,
    VolumeConfigSpec,
    VolumePhase,
    VolumeStatusSpec,
    VolumeType,
)

GIB = 1024**3
MIB = 1024 * 1024
IMAGE = "/images/data.img"
DISKS = [DiskSpec(dev_path="/dev/sda", size=64 * GIB), DiskSpec(dev_path="/dev/sdc", size=500 * GIB)]
META = DiscoveredVolumeSpec(dev_path="/dev/sda3", parent="/dev/sda", size=1 << 20, partition_label="META")
DISK_VOLUME = VolumeConfigSpec(
    partition_label="",
    volume_type=VolumeType.DISK,
    provisioning=ProvisioningConfigSpec(disk_selector="disk.size == 500u * GiB"),
    mount_target="/var/mnt/d",
)
#: e-x's selector matches nothing now (changed, or its filesystem relabelled under it)
EXISTING = VolumeConfigSpec(partition_label="", locator_match='volume.label == "gone"', filesystem="")
RELABELLED = DiscoveredVolumeSpec(dev_path="/dev/sdc1", parent="/dev/sdc", size=GIB, name="ext4", label="bar")


def claims(ready_on: dict[str, str]) -> DiskClaims:
    return DiskClaims(
        {"u-d": DISK_VOLUME, "e-x": EXISTING},
        [META, RELABELLED],
        DISKS,
        system_disk="/dev/sda",
        ready_on=ready_on,
    )


def test_a_disk_an_existing_volume_is_ready_on_is_not_taken_whatever_its_selector_matches_now() -> None:
    found = claims({"e-x": "/dev/sdc"})  # the formatter gives the disk of a ready volume: its parent
    with pytest.raises(DiskVolumeError) as refused:
        found.take("u-d")
    assert str(refused.value) == (
        "the disk /dev/sdc holds the volume e-x of this config: a disk volume never takes it"
    )
    assert refused.value.retryable
    assert found.reserved == frozenset()
    assert claims({}).take("u-d") == DISKS[1]  # not ready anywhere (a new start): nothing holds the disk


def ready(offset: int, size: int = 32 * MIB, path: str = IMAGE) -> VolumeStatusSpec:
    return VolumeStatusSpec(
        phase=VolumePhase.READY, location=path, offset=offset, size=size, partition_index=1
    )


LABELLED = DiscoveredVolumeSpec(
    dev_path=IMAGE, parent=IMAGE, offset=MIB, size=32 * MIB, partition_index=1, partition_label="u-foo"
)


def test_a_volume_located_by_the_label_of_a_ready_existing_volume_partition_is_refused() -> None:
    statuses = {"e-x": ready(MIB)}
    assert anyio.run(held_by_ready, "u-foo", LABELLED, statuses) == (
        f"the volume e-x is mounted from {IMAGE} partition 1: it keeps it until the next"
        " start (or until it is dropped from the config and unmounted), and this volume is not opened,"
        " formatted or mounted there"
    )
    assert anyio.run(held_by_ready, "u-foo", LABELLED, {"e-x": ready(64 * MIB)}) is None  # other bytes
    assert (
        anyio.run(held_by_ready, "u-foo", LABELLED, {**statuses, "u-foo": ready(MIB)}) is None
    )  # its own already
    failed = statuses["e-x"].model_copy(update={"phase": VolumePhase.FAILED})
    assert anyio.run(held_by_ready, "u-foo", LABELLED, {"e-x": failed}) is None


def test_the_ready_existing_volume_keeps_the_partition_a_new_volume_is_labelled_by() -> None:
    claimed = frozenset({"u-foo"})
    anyio.run(refuse_taken_region, "e-x", LABELLED, claimed, {"e-x": ready(MIB)}, [("e-x", LABELLED)])
    with pytest.raises(
        ExistingVolumeError
    ) as refused:  # not ready there (a start): the label's volume has it
        anyio.run(refuse_taken_region, "e-x", LABELLED, claimed, {}, [("e-x", LABELLED)])
    assert "the volume u-foo of this config: it is not given a second loop device" in str(refused.value)


def test_a_volume_dropped_by_the_config_and_still_mounted_holds_its_disk() -> None:
    """Its unmount is busy: the formatter keeps its ready status until it is unmounted."""
    found = DiskClaims(
        {"u-d": DISK_VOLUME},
        [META, RELABELLED],
        DISKS,
        system_disk="/dev/sda",
        ready_on={"e-old": "/dev/sdc"},
    )
    with pytest.raises(DiskVolumeError, match="the disk /dev/sdc holds the volume e-old"):
        found.take("u-d")
