"""EPHEMERAL with its first MiB zero but data after it is neither LUKS-formatted nor mkfs'd (review item 2).

Before, blank meant "no signature and the first MiB zero": `volumed run` encrypted (or made an XFS on) such a
partition and overwrote the data at 1 MiB + 4 KiB.
"""

from __future__ import annotations

import os

import pytest

from tests.system.lifecycle._node import (
    Node,
    describe,
    node_id_key,
    phases,
    status_of,
    volume_config,
)

MIB = 1 << 20
AT = MIB + 4096


@pytest.mark.parametrize("encrypted", [True, False])
async def test_data_after_a_zero_first_mib_is_kept(node: Node, *, encrypted: bool) -> None:
    ephemeral = node.region("EPHEMERAL")
    with ephemeral.path.open("r+b") as f:
        f.seek(ephemeral.offset + AT)
        f.write(os.urandom(4 * MIB))
    before = ephemeral.digest()
    keys = [node_id_key(0)] if encrypted else None
    node.write_config(volume_config("STATE", keys), volume_config("EPHEMERAL", keys))
    async with node.boot() as boot:
        snapshot = boot.snapshot
        assert phases(snapshot) == {"STATE": "ready", "EPHEMERAL": "failed"}, describe(snapshot)
        wanted = "luks" if encrypted else "xfs"
        kind = "block dev" if encrypted else "filesystem"
        assert status_of(snapshot, "EPHEMERAL").error_message == (
            f"{kind} type mismatch: unknown data (no signature libblkid knows, but byte {AT} is not zero)"
            f" != {wanted}"
        )
    assert ephemeral.digest() == before
