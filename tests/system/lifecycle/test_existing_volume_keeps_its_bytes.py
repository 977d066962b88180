"""A ready existing volume keeps the bytes it is mounted from until the next start (review30 F1, F2).

A disk volume (UserVolumeConfig ``volumeType: disk``) took the disk an existing volume was mounted from once
the existing volume's selector stopped matching it (its selector changed, or the mounted filesystem was
relabelled): two loop devices over the same bytes, both mounted read-write, and the files written through
one were lost. A user, raw or swap volume added with the label of the partition an existing volume is
mounted from failed the existing volume and took the partition (mounted a second time even while the first
mount was busy). Now the new volume fails naming the existing volume and is not opened, formatted or
mounted; at the next start the partition is the labelled volume's, as at any start, and the existing volume
is refused there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from structlog.testing import capture_logs

from tests._tools import require_tool
from tests.system.lifecycle._node import (
    describe,
    phases,
    run_tool,
    status_of,
    user_volume_config,
    volume_config,
)
from tests.system.lifecycle.test_disk_volume import disk_volume_config, whole_disk
from tests.system.lifecycle.test_existing_volume import (
    add_partition,
    existing_volume_config,
    put_ext4,
    target_of,
)
from tests.system.lifecycle.test_existing_volume_claims import loop_devices_over
from volumed.storage.filesystem import find_mount

if TYPE_CHECKING:
    from pathlib import Path

    from tests.system.lifecycle._node import Booted, Node
    from volumed.controllers import Convergence

BASE = (volume_config("STATE"), volume_config("EPHEMERAL"))


def phase(snapshot: Convergence, volume_id: str) -> str:
    return phases(snapshot).get(volume_id, "")


def ext4_disk(node: Node) -> Path:
    disk = whole_disk(node)
    run_tool(require_tool("mkfs.ext4"), "-q", "-F", "-L", "foo", disk)
    return disk


async def existing_ready_on(boot: Booted, node: Node, location: Path) -> Path:
    """e-x is ready on ``location`` and mounted; a file is written through its mount."""
    status = status_of(boot.snapshot, "e-x")
    assert (status.phase.value, status.location) == ("ready", str(location)), describe(boot.snapshot)
    target = target_of(node, "x")
    assert find_mount(target) is not None
    (target / "kept").write_bytes(b"written through e-x")
    return target


async def after_a_later_pass(boot: Booted, node: Node, *documents: dict[str, Any]) -> Convergence:
    """The convergence once a pass after the one in which ``documents`` (the config now) were seen has
    published every status: a marker volume is added, and waited for."""
    node.write_config(*documents, existing_volume_config("marker", 'volume.label == "nothing-has-this"'))
    return await boot.wait_for(lambda s: phase(s, "e-marker") == "missing", what="a later pass")


def assert_kept(node: Node, target: Path, disk: Path) -> None:
    """e-x is still the one mount of its bytes, and what was written through it is there."""
    assert (target / "kept").read_bytes() == b"written through e-x"
    assert len(loop_devices_over(str(disk))) == 1


async def test_a_disk_volume_is_refused_the_disk_a_ready_existing_volume_left_by_its_selector(
    node: Node,
) -> None:
    """One config write moves e-x's selector away from its disk and adds a disk volume selecting it."""
    disk = ext4_disk(node)
    node.write_config(*BASE, existing_volume_config("x", 'volume.label == "foo"'))
    async with node.boot(disks=[*node.disks, str(disk)]) as boot:
        target = await existing_ready_on(boot, node, disk)
        config = (
            *BASE,
            existing_volume_config("x", 'volume.label == "nothing-has-this"'),
            disk_volume_config("d", filesystem="ext4"),
        )
        node.write_config(*config)
        await boot.wait_for(
            lambda s: "now matches nothing" in status_of(s, "e-x").error_message and phase(s, "u-d") != "",
            what="the config change to be seen",
        )
        snapshot = await after_a_later_pass(boot, node, *config)
        status = status_of(snapshot, "u-d")
        assert (status.phase.value, status.error_message) == (
            "failed",
            f"the disk {disk} holds the volume e-x of this config: a disk volume never takes it",
        ), describe(snapshot)
        existing = status_of(snapshot, "e-x")
        assert existing.phase.value == "ready"
        assert existing.error_message.startswith("the volume selector now matches nothing, the volume stays")
        assert find_mount(target_of(node, "d")) is None
        assert_kept(node, target, disk)


async def test_a_disk_volume_is_refused_the_disk_when_the_mounted_filesystem_is_relabelled(
    node: Node,
) -> None:
    """No config change: the label e-x's selector matches is changed on its mounted filesystem."""
    disk = ext4_disk(node)
    node.write_config(
        *BASE,
        existing_volume_config("x", 'volume.label == "foo"'),
        disk_volume_config("d", filesystem="ext4"),
    )
    async with node.boot(disks=[*node.disks, str(disk)]) as boot:
        target = await existing_ready_on(boot, node, disk)
        assert "holds the volume e-x" in status_of(boot.snapshot, "u-d").error_message
        mounted = find_mount(target)
        assert mounted is not None
        run_tool(require_tool("e2label"), mounted.source, "bar")  # on a mounted ext4: through its journal
        run_tool(require_tool("sync"), "--file-system", target)  # the journal committed,
        run_tool(require_tool("sync"), mounted.source)  # the superblock written to the image discovery reads
        await boot.wait_for(
            lambda s: "now matches nothing" in status_of(s, "e-x").error_message,
            what="the relabelling to be seen",
        )
        snapshot = await after_a_later_pass(
            boot,
            node,
            *BASE,
            existing_volume_config("x", 'volume.label == "foo"'),
            disk_volume_config("d", filesystem="ext4"),
        )
        status = status_of(snapshot, "u-d")
        assert (status.phase.value, status.error_message) == (
            "failed",
            f"the disk {disk} holds the volume e-x of this config: a disk volume never takes it",
        ), describe(snapshot)
        assert phase(snapshot, "e-x") == "ready"
        assert find_mount(target_of(node, "d")) is None
        assert_kept(node, target, disk)


def _added(kind: str) -> dict[str, Any]:
    if kind == "UserVolumeConfig":
        return user_volume_config("foo", min_size="16MiB")
    return {
        "apiVersion": "v1alpha1",
        "kind": kind,
        "name": "foo",
        "provisioning": {"diskSelector": {"match": "!system_disk"}, "minSize": "16MiB"},
    }


@pytest.mark.parametrize(
    ("kind", "volume_id"),
    [("UserVolumeConfig", "u-foo"), ("RawVolumeConfig", "r-foo"), ("SwapVolumeConfig", "s-foo")],
    ids=["user", "raw", "swap"],
)
async def test_a_volume_added_with_the_label_of_a_ready_existing_volume_partition_is_refused(
    node: Node, kind: str, volume_id: str
) -> None:
    region = add_partition(node, volume_id)
    put_ext4(region, node.workdir, {"payload": b"old"}, label="foolabel")
    existing = existing_volume_config("x", 'volume.label == "foolabel"')
    node.write_config(*BASE, existing)
    async with node.boot() as boot:
        target = await existing_ready_on(boot, node, node.data_disk)
        node.write_config(*BASE, existing, _added(kind))
        snapshot = await boot.wait_for(
            lambda s: phase(s, volume_id) in ("failed", "ready"), what="the added volume to be tried"
        )
        status = status_of(snapshot, volume_id)
        assert (status.phase.value, status.error_message) == (
            "failed",
            f"the volume e-x is mounted from {region.path} partition 1: it keeps it until the next start (or"
            " until it is dropped from the config and unmounted), and this volume is not opened, formatted or"
            " mounted there",
        ), describe(snapshot)
        assert (phase(snapshot, "e-x"), status_of(snapshot, "e-x").error_message) == ("ready", "")
        assert volume_id not in snapshot.mounted
        assert find_mount(target) is not None
        assert_kept(node, target, node.data_disk)
    if kind != "UserVolumeConfig":
        return
    async with node.boot() as boot:  # a fresh start: the labelled partition is the user volume's
        snapshot = boot.snapshot
        assert (phase(snapshot, "u-foo"), phase(snapshot, "e-x")) == ("ready", "failed"), describe(snapshot)
        assert "the volume u-foo of this config: it is not given a second loop device" in (
            status_of(snapshot, "e-x").error_message
        )
        assert (node.target("u-foo") / "kept").read_bytes() == b"written through e-x"  # not formatted
        assert find_mount(target_of(node, "x")) is None
        assert len(loop_devices_over(str(node.data_disk))) == 1


async def test_a_removed_existing_volume_still_mounted_keeps_its_partition(node: Node) -> None:
    """The config drops e-x and adds the user volume of its partition's label in one write while a file on
    e-x is open: e-x cannot be unmounted, so u-foo may not have the bytes yet."""
    region = add_partition(node, "u-foo")
    put_ext4(region, node.workdir, {"payload": b"old"}, label="foolabel")
    node.write_config(*BASE, existing_volume_config("x", 'volume.label == "foolabel"'))
    async with node.boot() as boot:
        target = await existing_ready_on(boot, node, node.data_disk)
        with capture_logs() as logs, (target / "held").open("a") as held:
            held.write("busy\n")
            config = (*BASE, user_volume_config("foo", min_size="16MiB"))
            node.write_config(*config)
            await boot.wait_for(
                lambda s: (
                    any("cannot unmount e-x" in str(e.get("event", "")) for e in logs)
                    and phase(s, "u-foo") != ""
                ),
                what="e-x to be busy",
            )
            snapshot = await after_a_later_pass(boot, node, *config)
            status = status_of(snapshot, "u-foo")
            assert (status.phase.value, status.error_message) == (
                "failed",
                f"the volume e-x is mounted from {region.path} partition 1: it keeps it until the next start"
                " (or until it is dropped from the config and unmounted), and this volume is not opened,"
                " formatted or mounted there",
            ), describe(snapshot)
            assert find_mount(target) is not None
            assert find_mount(node.target("u-foo")) is None
            assert_kept(node, target, node.data_disk)
        # released: e-x is unmounted, and u-foo gets the partition (the same filesystem, not formatted)
        snapshot = await boot.wait_for(lambda s: phase(s, "u-foo") == "ready", what="u-foo to be ready")
        assert find_mount(target) is None
        assert (node.target("u-foo") / "kept").read_bytes() == b"written through e-x"
