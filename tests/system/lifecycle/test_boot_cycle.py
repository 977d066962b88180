"""Seed doc flow 1: the first boot encrypts and formats STATE, EPHEMERAL and a user volume; the second boot
opens them and the data is there; cryptsetup's view of each header agrees with the VolumeStatus."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.system.lifecycle._node import (
    cryptsetup_opens,
    describe,
    luks_dump,
    node_id_key,
    static_key,
    status_of,
    user_volume_config,
    volume_config,
)

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

VOLUMES = ("STATE", "EPHEMERAL", "u-data")


async def test_first_boot_encrypts_second_boot_opens(node: Node) -> None:
    node.write_config(
        volume_config("STATE", [node_id_key(0)]),
        volume_config("EPHEMERAL", [node_id_key(0)]),
        user_volume_config("data", [static_key(0, "user-secret", lock=True)]),
    )

    async with node.boot() as first:
        snapshot = first.snapshot
        assert snapshot.ok, describe(snapshot)
        assert set(snapshot.statuses) == set(VOLUMES)
        for volume in VOLUMES:
            (node.target(volume) / "marker").write_text(f"boot 1 wrote this on {volume}\n")
        assert status_of(snapshot, "u-data").locked_to_state
        assert status_of(snapshot, "u-data").location == str(node.data_disk)  # chosen by `!system_disk`
        assert (node.target("STATE") / "encryption-salt.yaml").exists()

    data = node.region("u-data")
    assert data.path == node.data_disk
    for volume in VOLUMES:
        status = status_of(snapshot, volume)
        dump = luks_dump(node.region(volume))
        assert sorted(int(s) for s in dump["keyslots"]) == [status.encryption_slot] == [0]
        assert len(dump["keyslots"]) == len(status.configured_encryption_keys)
        assert dump["keyslots"]["0"]["kdf"]["type"] == "argon2id"
        assert dump["segments"]["0"]["encryption"] == "aes-xts-plain64"
        assert status.encryption_failed_syncs == ()
    # the nodeID passphrase is the node UUID followed by the volume id (Talos' derivation)
    assert cryptsetup_opens(node.region("STATE"), f"{node.node_uuid}STATE".encode(), slot=0)
    assert cryptsetup_opens(node.region("EPHEMERAL"), f"{node.node_uuid}EPHEMERAL".encode(), slot=0)
    # locked to STATE: the configured passphrase alone does not open the user volume
    assert not cryptsetup_opens(data, b"user-secret", slot=0)

    async with node.boot() as second:
        assert second.snapshot.ok, describe(second.snapshot)
        for volume in VOLUMES:
            assert (node.target(volume) / "marker").read_text() == f"boot 1 wrote this on {volume}\n"
            status = status_of(second.snapshot, volume)
            assert status.encryption_slot == 0
            assert status.encryption_failed_syncs == ()
    for volume in VOLUMES:
        assert sorted(int(s) for s in luks_dump(node.region(volume))["keyslots"]) == [0]
