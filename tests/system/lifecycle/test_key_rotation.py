"""Seed doc "Key Rotation": add a key, reboot, remove the old one, reboot — cryptsetup agrees on the slots at
every step and the data stays. Then the same rotation applied at runtime by rewriting the config file: the
ConfigLoader picks it up and the key slots follow without a reboot (Talos needs one)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from tests.system.lifecycle._node import (
    cryptsetup_opens,
    describe,
    luks_slots,
    node_id_key,
    static_key,
    status_of,
    volume_config,
)

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Booted, Node, Region

STATE = volume_config("STATE", [node_id_key(0)])


def ephemeral(*keys: dict[str, object]) -> dict[str, object]:
    return volume_config("EPHEMERAL", list(keys))


def assert_keys(region: Region, expected: dict[int, bytes], removed: dict[int, bytes]) -> None:
    assert luks_slots(region) == sorted(expected)
    for slot, passphrase in expected.items():
        assert cryptsetup_opens(region, passphrase, slot=slot), f"slot {slot} does not take its passphrase"
    for passphrase in removed.values():
        assert not cryptsetup_opens(region, passphrase), "a removed key still opens the volume"


async def test_rotation_across_reboots(node: Node) -> None:
    old, new = static_key(0, "oldkey"), static_key(1, "newkey")
    node.write_config(STATE, ephemeral(old))
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        (node.target("EPHEMERAL") / "marker").write_text("kept through the rotation\n")
    region = node.region("EPHEMERAL")
    assert_keys(region, {0: b"oldkey"}, {})

    node.write_config(STATE, ephemeral(old, new))  # step 1: add the new key, keep the old one
    async with node.boot() as boot:
        status = status_of(boot.snapshot, "EPHEMERAL")
        assert boot.snapshot.ok, describe(boot.snapshot)
        assert (status.encryption_slot, status.encryption_failed_syncs) == (0, ())
        assert status.configured_encryption_keys == ("static", "static")
    assert_keys(region, {0: b"oldkey", 1: b"newkey"}, {})

    node.write_config(STATE, ephemeral(new))  # step 2: remove the old key
    async with node.boot() as boot:
        status = status_of(boot.snapshot, "EPHEMERAL")
        assert boot.snapshot.ok, describe(boot.snapshot)
        assert (status.encryption_slot, status.encryption_failed_syncs) == (1, ())
        assert (node.target("EPHEMERAL") / "marker").read_text() == "kept through the rotation\n"
    assert_keys(region, {1: b"newkey"}, {0: b"oldkey"})

    async with node.boot() as boot:  # and it keeps opening with the new key alone
        assert status_of(boot.snapshot, "EPHEMERAL").encryption_slot == 1
        assert (node.target("EPHEMERAL") / "marker").read_text() == "kept through the rotation\n"


async def wait_for_slots(region: Region, slots: list[int], limit: float = 20.0) -> None:
    seen: list[int] = []
    with anyio.move_on_after(limit):
        while True:
            seen = await anyio.to_thread.run_sync(luks_slots, region)
            if seen == slots:
                return
            await anyio.sleep(0.2)
    raise AssertionError(f"key slots are {seen}, not {slots}, {limit} s after the config changed")


async def assert_still_mounted(boot: Booted, node: Node) -> None:
    snapshot = await boot.now()
    assert snapshot.ok, describe(snapshot)
    assert "EPHEMERAL" in snapshot.mounted, describe(snapshot)
    assert (node.target("EPHEMERAL") / "marker").read_text() == "written before the rotation\n"


async def test_rotation_at_runtime_without_reboot(node: Node) -> None:
    old, new = static_key(0, "oldkey"), static_key(1, "newkey")
    node.write_config(STATE, ephemeral(old))
    region = node.region("EPHEMERAL")
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        (node.target("EPHEMERAL") / "marker").write_text("written before the rotation\n")

        node.write_config(STATE, ephemeral(old, new))
        await wait_for_slots(region, [0, 1])
        await assert_still_mounted(boot, node)
        assert cryptsetup_opens(region, b"newkey", slot=1)

        node.write_config(STATE, ephemeral(new))
        await wait_for_slots(region, [1])
        await assert_still_mounted(boot, node)
        assert not cryptsetup_opens(region, b"oldkey")
        snapshot = await boot.wait_for(
            lambda s: status_of(s, "EPHEMERAL").configured_encryption_keys == ("static",),
            what="the status to show the new key set",
        )
        assert status_of(snapshot, "EPHEMERAL").encryption_failed_syncs == ()

    async with node.boot() as boot:  # the next boot opens with the key that is left
        status = status_of(boot.snapshot, "EPHEMERAL")
        assert (status.encryption_slot, status.encryption_failed_syncs) == (1, ())
        assert (node.target("EPHEMERAL") / "marker").read_text() == "written before the rotation\n"
