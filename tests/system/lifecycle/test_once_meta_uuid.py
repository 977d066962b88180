"""`volumed run --once` on a node whose UUID is only in META (tag 0x0f; no flag, no SMBIOS UUID) ends with
every volume ready, STATE's nodeID key bound to META's UUID.

Until META was read the node UUID was unknown and taken for "none": STATE failed (retryably) for a moment,
and `--once` could end there with exit 6, reporting failed a volume that would have opened.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import anyio

from tests.system.lifecycle._node import cryptsetup_opens, node_id_key, volume_config
from tests.system.lifecycle.test_state_failed_waves import FAST_ARGON2, _without_node_uuid
from volumed.storage.meta import MetaPartition, write_uuid_override

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

META_UUID = str(uuid.uuid4())
BOOTS = 3  # the fault was a race: each boot had its chance to catch the moment


async def test_once_with_the_node_uuid_in_meta_only_ends_ready(node: Node) -> None:
    write_uuid_override(MetaPartition(node.system_disk, offset=node.region("META").offset), META_UUID)
    state = volume_config("STATE", [node_id_key(0)])
    state["encryption"]["pbkdf"] = dict(FAST_ARGON2)
    node.write_config(state, volume_config("EPHEMERAL"))
    argv = _without_node_uuid(node.run_argv(timeout=120.0))
    for boot in range(BOOTS):
        with anyio.fail_after(300):
            result = await anyio.run_process(argv, check=False)
        stdout, stderr = result.stdout.decode(), result.stderr.decode()
        assert result.returncode == 0, (boot, result.returncode, stdout, stderr)
        assert "failed" not in stdout, (boot, stdout)
    assert cryptsetup_opens(node.region("STATE"), (META_UUID + "STATE").encode(), slot=0)
