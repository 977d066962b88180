"""A user volume whose disk selector fails to evaluate on a disk fails alone, with a reason that names the
volume and the disk; the other volumes of the node become ready (the `SelectorError` used to leave
`provision_partition` bare, and the volume said only "unexpected error")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.system.lifecycle._node import describe, phases, status_of, user_volume_config, volume_config

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node


async def test_a_selector_failing_on_a_disk_fails_only_its_volume(node: Node) -> None:
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        user_volume_config("bad", selector="disk.size / 0u > 0u"),
        user_volume_config("good", min_size="32MiB"),
    )
    async with node.boot() as boot:
        snapshot = boot.snapshot
        assert phases(snapshot) == {
            "STATE": "ready",
            "EPHEMERAL": "ready",
            "u-bad": "failed",
            "u-good": "ready",
        }, describe(snapshot)
        message = status_of(snapshot, "u-bad").error_message
        first_disk = sorted(node.disks)[0]
        assert message == (
            f"cannot provision volume u-bad: its diskSelector failed to evaluate on disk {first_disk}:"
            " evaluation error at line 1, column 1"
        ), message
