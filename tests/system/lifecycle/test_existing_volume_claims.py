"""Existing volumes share no region and never claim what they do not have (review 22 F1, F5, F6).

Two ExistingVolumeConfigs whose selectors match one partition of an image file each got a read-write loop
device over the same bytes, both mounted: a file written through one mount was lost. Now the region (path
and byte range, whatever its label) has one volume: the ready one, else the first in Talos' order; the other
fails naming it. A ready existing volume whose selector now matches another partition keeps its partition
until the next start and says so (its status reported the new one while the old one stayed mounted). A
swap partition is refused with a clear error instead of a mount retried forever.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from tests._tools import require_tool
from tests.system.lifecycle._node import describe, phases, status_of, volume_config
from tests.system.lifecycle.test_existing_volume import (
    add_partition,
    existing_volume_config,
    put_ext4,
    target_of,
)
from volumed.storage.filesystem import find_mount

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node


def loop_devices_over(image: str) -> list[str]:
    listed = subprocess.run(
        [require_tool("losetup"), "--list", "--noheadings", "--output", "NAME,BACK-FILE"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [line.split()[0] for line in listed.splitlines() if line.split()[1:] == [image]]


async def test_two_existing_volumes_matching_one_partition_get_one_mount(node: Node) -> None:
    region = add_partition(node, "mydata")
    put_ext4(region, node.workdir, {"payload": b"one"}, label="shared")
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        existing_volume_config("a", 'volume.label == "shared"'),
        existing_volume_config("b", 'volume.partition_label == "mydata"'),
    )
    for _ in range(2):  # the same one wins at every start
        async with node.boot() as boot:
            snapshot = boot.snapshot
            assert (phases(snapshot)["e-a"], phases(snapshot)["e-b"]) == ("ready", "failed"), describe(
                snapshot
            )
            assert status_of(snapshot, "e-b").error_message == (
                f"the volume selector matches {region.path} partition 1, where the volume e-a of this config"
                " is: it is not given a second loop device (one filesystem mounted twice over two devices is"
                " corrupted)"
            )
            assert find_mount(target_of(node, "b")) is None
            mounted = find_mount(target_of(node, "a"))
            assert mounted is not None
            (target_of(node, "a") / "written").write_bytes(b"kept")
    async with node.boot() as boot:
        assert (target_of(node, "a") / "written").read_bytes() == b"kept"


async def test_an_existing_volume_added_over_a_ready_one_is_refused(node: Node) -> None:
    """The ready one keeps the region even if the new one comes first in the order (its id sorts first)."""
    region = add_partition(node, "mydata")
    put_ext4(region, node.workdir, {"payload": b"one"}, label="shared")
    first = existing_volume_config("z", 'volume.label == "shared"')
    node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"), first)
    async with node.boot() as boot:
        assert phases(boot.snapshot)["e-z"] == "ready", describe(boot.snapshot)
        node.write_config(
            volume_config("STATE"),
            volume_config("EPHEMERAL"),
            first,
            existing_volume_config("a", 'volume.partition_label == "mydata"'),
        )
        snapshot = await boot.wait_for(
            lambda s: "e-a" in s.statuses and status_of(s, "e-a").phase.value == "failed",
            what="the second existing volume to be refused",
        )
        assert "where the volume e-z of this config is" in status_of(snapshot, "e-a").error_message
        assert phases(snapshot)["e-z"] == "ready"
        assert find_mount(target_of(node, "a")) is None
        assert len(loop_devices_over(str(node.data_disk))) == 1


async def test_a_selector_change_keeps_the_mounted_partition_until_the_next_start(node: Node) -> None:
    one, two = add_partition(node, "p1"), add_partition(node, "p2")
    put_ext4(one, node.workdir, {"which": b"one"}, label="one")
    put_ext4(two, node.workdir, {"which": b"two"}, label="two")
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        existing_volume_config("x", 'volume.partition_label == "p1"'),
    )
    target = target_of(node, "x")
    async with node.boot() as boot:
        assert status_of(boot.snapshot, "e-x").offset == one.offset, describe(boot.snapshot)
        node.write_config(
            volume_config("STATE"),
            volume_config("EPHEMERAL"),
            existing_volume_config("x", 'volume.partition_label == "p2"'),
        )
        snapshot = await boot.wait_for(
            lambda s: "selector" in status_of(s, "e-x").error_message, what="the selector change to be seen"
        )
        status = status_of(snapshot, "e-x")
        assert (status.phase.value, status.offset, status.partition_index) == ("ready", one.offset, 1)
        assert status.error_message == (
            f"the volume selector now matches {two.path} partition 2, the volume stays on {one.path}"
            " partition 1: kept as it is until the next boot"
        )
        assert (target / "which").read_bytes() == b"one"
    async with node.boot() as boot:
        status = status_of(boot.snapshot, "e-x")
        assert (status.phase.value, status.offset, status.error_message) == ("ready", two.offset, "")
        assert (target / "which").read_bytes() == b"two"


async def test_an_existing_swap_partition_is_refused_not_mounted_again_and_again(node: Node) -> None:
    region = add_partition(node, "swp")
    with region.device(read_only=False) as device:
        subprocess.run([require_tool("mkswap"), device], check=True, capture_output=True)  # noqa: ASYNC221
    before = region.digest()
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        existing_volume_config("swp", 'volume.partition_label == "swp"'),
    )
    async with node.boot(limit=30) as boot:
        status = status_of(boot.snapshot, "e-swp")
        assert (status.phase.value, status.error_message) == (
            "failed",
            "swap: not mountable; volumed does not turn on an existing volume as swap (use a"
            " SwapVolumeConfig)",
        ), describe(boot.snapshot)
        assert find_mount(target_of(node, "swp")) is None
    assert region.digest() == before
