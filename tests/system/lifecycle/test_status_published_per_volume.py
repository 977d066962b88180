"""A volume's status is published when its own attempt ends, not when the formatter's whole pass does: an
unencrypted user volume is ready and mounted while an encrypted one is still in its KDF (the boot bench on
the dm path measured nine volumes becoming ready within 60 ms, 42 s after the first KDF started, and their
mounts only then beginning, one after another)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.system.lifecycle._node import static_key, user_volume_config, volume_config
from volumed.resources import VolumePhase

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

SLOW_PBKDF = {"type": "argon2id", "memory": 131072, "iterations": 4, "parallel": 1}
"""Seconds of KDF on these machines for each of the slow volume's key slots."""


async def test_a_plain_volume_mounts_while_an_encrypted_one_is_still_in_its_kdf(node: Node) -> None:
    slow = user_volume_config("slow", [static_key(0, "slow volume"), static_key(1, "second slot")])
    slow["encryption"]["pbkdf"] = dict(SLOW_PBKDF)
    plain = user_volume_config("plain", min_size="32MiB")
    plain["provisioning"].update({"maxSize": "32MiB", "grow": False})  # room for u-slow on the same disk
    node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"), slow, plain)
    async with node.boot(settle=False) as booted:
        snapshot = await booted.wait_for(lambda s: "u-plain" in s.mounted, limit=120, what="u-plain mounted")
        slow_status = snapshot.statuses.get("u-slow")
        assert slow_status is None or slow_status.phase != VolumePhase.READY, slow_status
        await booted.wait_for(lambda s: "u-slow" in s.mounted, limit=300, what="u-slow mounted")
