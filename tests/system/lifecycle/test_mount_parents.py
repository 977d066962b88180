"""A volume is mounted only after the volume mounted at a parent of its target (review 22 F3, F4).

Existing volumes have no provisioning, so their statuses are ready before EPHEMERAL's; the Mounter waited
only for parents among the volumes already ready, so /var/mnt/<name> was mounted first and then hidden when
EPHEMERAL was mounted over /var (a workload writing there wrote to EPHEMERAL). A live change of
mount.readOnly remounts the volume, and the MountStatus says what is mounted.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest
from structlog.testing import capture_logs

from tests.system.lifecycle._node import describe, phases, static_key, volume_config
from tests.system.lifecycle.test_existing_volume import (
    add_partition,
    existing_volume_config,
    put_ext4,
    target_of,
)
from volumed.resources import BLOCK, MountStatusDefinition, MountStatusSpec
from volumed.runtime import Pointer
from volumed.storage.filesystem import find_mount

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Booted, Node

NAMES = ("one", "two", "three")


def mount_tree() -> dict[str, tuple[int, int, int]]:
    """Each mount point's (line, mount id, parent id) in /proc/self/mountinfo (the topmost one)."""
    tree = {}
    for line_number, line in enumerate(Path("/proc/self/mountinfo").read_text().splitlines()):
        fields = line.split()
        tree[fields[4]] = (line_number, int(fields[0]), int(fields[1]))
    return tree


async def test_existing_volumes_are_mounted_on_top_of_ephemeral(node: Node) -> None:
    for name in NAMES:
        put_ext4(add_partition(node, f"p-{name}"), node.workdir, {"precious": name.encode()}, label=name)
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        *(existing_volume_config(name, f'volume.partition_label == "p-{name}"') for name in NAMES),
    )
    var = str(node.root / "var")
    for _ in range(2):  # also after a restart
        async with node.boot() as boot:
            assert set(phases(boot.snapshot).values()) == {"ready"}, describe(boot.snapshot)
            tree = mount_tree()
            for name in NAMES:
                target = str(target_of(node, name))
                assert target in tree, f"{target} not mounted"
                assert tree[target][2] == tree[var][1], f"{target} is not mounted on EPHEMERAL's /var"
                assert tree[var][0] < tree[target][0], "/var mounted after " + target
                # visible: what is read there is the volume's own file
                assert (Path(target) / "precious").read_bytes() == name.encode()


async def mount_status(boot: Booted, volume_id: str) -> MountStatusSpec:
    found = await boot.subsystem.state.get(Pointer(BLOCK, MountStatusDefinition.type, f"{volume_id}-volumed"))
    spec: MountStatusSpec = found.spec
    return spec


async def test_a_live_read_only_change_remounts_and_is_reported_as_mounted(
    node: Node,
) -> None:
    put_ext4(add_partition(node, "p-x"), node.workdir, {"precious": b"x"}, label="x")
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        existing_volume_config("x", 'volume.partition_label == "p-x"', read_only=False),
    )
    target = target_of(node, "x")
    async with node.boot() as boot:
        assert (await mount_status(boot, "e-x")).read_only is False
        node.write_config(
            volume_config("STATE"),
            volume_config("EPHEMERAL"),
            existing_volume_config("x", 'volume.partition_label == "p-x"', read_only=True),
        )
        # the Mounter remounts it read-only; the MountStatus says so only once it is
        with anyio.move_on_after(30):
            while not (await mount_status(boot, "e-x")).read_only:  # noqa: ASYNC110
                await anyio.sleep(0.1)
        spec = await mount_status(boot, "e-x")
        mounted = find_mount(target)
        assert mounted is not None
        assert spec.read_only == ("ro" in mounted.options) == True, (spec, mounted.options)  # noqa: E712
        with pytest.raises(OSError, match="Read-only file system") as refused:
            (target / "new").write_bytes(b"x")
        assert refused.value.errno == errno.EROFS
    async with node.boot() as boot:
        mounted = find_mount(target)
        assert mounted is not None
        assert "ro" in mounted.options
        assert (await mount_status(boot, "e-x")).read_only is True


async def test_a_child_of_a_failed_parent_waits_unmounted_and_the_boot_settles(node: Node) -> None:
    """EPHEMERAL fails (its config now asks for encryption over its xfs): the existing volume below /var is
    ready but not mounted onto the root's /var, and the boot still settles (`--once` does not time out)."""
    put_ext4(add_partition(node, "p-x"), node.workdir, {"precious": b"x"}, label="x")
    node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"))
    async with node.boot():
        pass  # EPHEMERAL gets xfs
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL", [static_key(0, "ephemeral-pass")]),
        existing_volume_config("x", 'volume.partition_label == "p-x"'),
    )
    with capture_logs() as logs:
        async with node.boot(limit=30) as boot:
            assert (phases(boot.snapshot)["EPHEMERAL"], phases(boot.snapshot)["e-x"]) == ("failed", "ready")
            assert find_mount(target_of(node, "x")) is None
            assert f"e-x waits for EPHEMERAL to be mounted at {node.root / 'var'} (EPHEMERAL: failed)" in [
                r["event"] for r in logs
            ]


async def test_a_remount_that_fails_keeps_the_mount_and_its_status_says_so(node: Node) -> None:
    """readOnly true -> false on an existing volume: its loop device is read-only, so the remount read-write
    fails; the mount stays read-only, the MountStatus says read-only, and the warning is logged once."""
    put_ext4(add_partition(node, "p-x"), node.workdir, {"precious": b"x"}, label="x")
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        existing_volume_config("x", 'volume.partition_label == "p-x"', read_only=True),
    )
    with capture_logs() as logs:
        async with node.boot() as boot:
            assert (await mount_status(boot, "e-x")).read_only is True
            node.write_config(
                volume_config("STATE"),
                volume_config("EPHEMERAL"),
                existing_volume_config("x", 'volume.partition_label == "p-x"', read_only=False),
            )
            with anyio.fail_after(30):
                while not any("cannot remount" in r["event"] for r in logs):  # noqa: ASYNC110
                    await anyio.sleep(0.1)
            stats = boot.subsystem.runtime.stats
            start = stats()["Mounter"].reconciles
            with anyio.fail_after(30):  # retried every retry_interval, warned about once
                while stats()["Mounter"].reconciles < start + 3:  # noqa: ASYNC110 (a counter, no event)
                    await anyio.sleep(0.1)
            mounted = find_mount(target_of(node, "x"))
            assert mounted is not None
            assert "ro" in mounted.options
            assert (await mount_status(boot, "e-x")).read_only is True
            warnings = [r["event"] for r in logs if "cannot remount" in r["event"]]
            assert warnings == ["cannot remount e-x read-write; it stays read-only (retrying)"]
