"""A volume is mounted only after the volume mounted at a parent of its target (review 22 F3, F4).

Existing volumes have no provisioning, so their statuses are ready before EPHEMERAL's; the Mounter waited
only for parents among the volumes already ready, so /var/mnt/<name> was mounted first and then hidden when
EPHEMERAL was mounted over /var (a workload writing there wrote to EPHEMERAL).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.system.lifecycle._node import describe, phases, volume_config
from tests.system.lifecycle.test_existing_volume import (
    add_partition,
    existing_volume_config,
    put_ext4,
    target_of,
)

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

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
