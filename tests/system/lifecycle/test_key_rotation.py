"""Seed doc "Key Rotation": add a key, reboot, remove the old one, reboot — cryptsetup agrees on the slots at
every step and the data stays. Then the same rotation applied at runtime by rewriting the config file: the
ConfigLoader picks it up and the key slots follow without a reboot (Talos needs one)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import anyio

from tests.system.lifecycle._node import (
    cryptsetup_opens,
    describe,
    luks_slots,
    node_id_key,
    phases,
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


async def test_rotating_the_key_of_the_slot_that_opened_at_runtime(node: Node) -> None:
    """The documented rotation on the slot that opened the volume (keep slot 1, change slot 0, then drop
    slot 1): slot 0 kept its old key, so the next boot found no configured key that opened the volume."""
    recovery = static_key(1, "recovery")
    node.write_config(STATE, ephemeral(node_id_key(0), recovery))
    region = node.region("EPHEMERAL")
    async with node.boot() as boot:
        assert status_of(boot.snapshot, "EPHEMERAL").encryption_slot == 0, describe(boot.snapshot)
        (node.target("EPHEMERAL") / "marker").write_text("written before the rotation\n")

        node.write_config(STATE, ephemeral(static_key(0, "newpass"), recovery))
        for _ in range(100):  # up to 20 s
            if await anyio.to_thread.run_sync(partial(cryptsetup_opens, region, b"newpass", slot=0)):
                break
            await anyio.sleep(0.2)
        assert cryptsetup_opens(region, b"newpass", slot=0), "slot 0 was not enrolled with its new key"
        await assert_still_mounted(boot, node)

        node.write_config(STATE, ephemeral(static_key(0, "newpass")))
        await wait_for_slots(region, [0])
        await assert_still_mounted(boot, node)

    async with node.boot() as boot:
        status = status_of(boot.snapshot, "EPHEMERAL")
        assert (status.phase, status.encryption_slot) == ("ready", 0), describe(boot.snapshot)
        assert (node.target("EPHEMERAL") / "marker").read_text() == "written before the rotation\n"


async def test_a_config_that_drops_encryption_leaves_ready_volumes_mounted(node: Node) -> None:
    """A config with no volume documents (e.g. a misspelt kind) turns STATE and EPHEMERAL unencrypted: the
    running volumes were unmounted and failed at once. They now stay as they are until the next boot."""
    node.write_config(STATE, ephemeral(node_id_key(0)))
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        (node.target("EPHEMERAL") / "marker").write_text("written before the rotation\n")

        node.write_config({"apiVersion": "v1alpha1", "kind": "VolumeConfg", "name": "EPHEMERAL"})
        snapshot = await boot.wait_for(
            lambda s: "kept as it is until the next boot" in status_of(s, "EPHEMERAL").error_message,
            what="the status to report the config change it does not apply",
        )
        assert status_of(snapshot, "EPHEMERAL").error_message == (
            "the config changes encryption from luks2 to none: kept as it is until the next boot"
        )
        await anyio.sleep(1.5)  # several retry intervals: still in place
        await assert_still_mounted(boot, node)
        assert phases(await boot.now()) == {"STATE": "ready", "EPHEMERAL": "ready"}

        node.write_config(STATE, ephemeral(node_id_key(0)))  # the typo fixed
        await boot.wait_for(
            lambda s: status_of(s, "EPHEMERAL").error_message == "", what="the note to go once fixed"
        )
        await assert_still_mounted(boot, node)
