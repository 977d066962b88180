"""A Talos machine config that encrypts STATE and EPHEMERAL only through the legacy v1alpha1
``machine.systemDiskEncryption`` block (no VolumeConfig): both volumes are encrypted as it says, META tag 9
holds the block as Talos writes it, and a later boot without any config opens STATE from tag 9 alone.

Before volumed read the block, it ignored the v1alpha1 document: STATE and EPHEMERAL were left unencrypted and
tag 9 was written as ``null``, so such a node's STATE could not be opened by a boot without a config.
The block has no ``pbkdf`` (v1alpha1 has none): key slots get the default argon2id, as on Talos.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from tests.system.lifecycle._node import cryptsetup_opens, describe, luks_dump, status_of

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

EPHEMERAL_PASSPHRASE: Final = "ephemeral-legacy-secret"
SLOW_KDF_LIMIT: Final = 180.0
MACHINE_CONFIG: Final[dict[str, Any]] = {
    "version": "v1alpha1",
    "debug": False,
    "machine": {
        "type": "worker",
        "token": "abcdef.0123456789abcdef",
        "install": {"disk": "/dev/sda", "image": "ghcr.io/siderolabs/installer:v1.12.0"},
        "systemDiskEncryption": {
            "state": {"provider": "luks2", "keys": [{"nodeID": {}, "slot": 0}]},
            "ephemeral": {"keys": [{"static": {"passphrase": EPHEMERAL_PASSPHRASE}, "slot": 0}]},
        },
    },
    "cluster": {"clusterName": "legacy", "controlPlane": {"endpoint": "https://10.5.0.2:6443"}},
}
# Worked out by hand from Talos release-1.12: setupStateEncryption json.Marshal's the
# *v1alpha1.EncryptionConfig of machine.systemDiskEncryption.state: v1alpha1's fields in struct order, keys as
# KeyStatic, KeyNodeID, KeyKMS, KeySlot, KeyTPM, the provider as written, unset pointers and slices null.
TAG9: Final = (
    '{"EncryptionProvider":"luks2","EncryptionKeys":[{"KeyStatic":null,"KeyNodeID":{},"KeyKMS":null,"KeySlot":0,'
    '"KeyTPM":null}],"EncryptionCipher":"","EncryptionKeySize":0,"EncryptionBlockSize":0,'
    '"EncryptionPerfOptions":null}'
)


async def test_legacy_block_encrypts_system_volumes_and_tag9_opens_state_without_config(node: Node) -> None:
    node.write_config(MACHINE_CONFIG)
    async with node.boot(settle=False) as boot:
        # Both volumes are formatted at once with the default (benchmarked, slow) argon2id on one image file,
        # whose flock one format holds across its KDF: the other may fail once with "the header is locked by
        # another process", a retryable error, and is formatted on the retry.
        snapshot = await boot.wait_for(
            lambda s: s.settled and s.ok, limit=SLOW_KDF_LIMIT, what="STATE and EPHEMERAL ready and mounted"
        )
        for volume, kind in (("STATE", "nodeID"), ("EPHEMERAL", "static")):
            status = status_of(snapshot, volume)
            assert (status.encryption_provider, status.encryption_slot) == ("luks2", 0), describe(snapshot)
            assert status.configured_encryption_keys == (kind,)
        (node.target("STATE") / "marker").write_text("on legacy STATE\n")

    # independent side: cryptsetup opens both with the passphrases Talos derives (nodeID: UUID + volume ID)
    state, ephemeral = node.region("STATE"), node.region("EPHEMERAL")
    assert cryptsetup_opens(state, f"{node.node_uuid}STATE".encode(), slot=0)
    assert cryptsetup_opens(ephemeral, EPHEMERAL_PASSPHRASE.encode(), slot=0)
    assert not cryptsetup_opens(state, EPHEMERAL_PASSPHRASE.encode())
    for region in (state, ephemeral):
        dump = luks_dump(region)
        assert dump["keyslots"]["0"]["kdf"]["type"] == "argon2id"  # Talos >= 1.12.7 opens only argon2 slots

    meta = node.region("META")
    shown = node.volumed("meta", "get", node.system_disk, "9", "--offset", str(meta.offset))
    assert shown.stdout == TAG9

    missing = node.workdir / "no-such-config.yaml"
    assert not missing.exists()
    async with node.boot(config=missing) as boot:
        snapshot = boot.snapshot
        assert snapshot.ok, describe(snapshot)
        assert snapshot.configured == {"STATE"}, describe(snapshot)
        status = status_of(snapshot, "STATE")
        assert (status.encryption_provider, status.encryption_slot, status.configured_encryption_keys) == (
            "luks2",
            0,
            ("nodeID",),
        )
        assert (node.target("STATE") / "marker").read_text() == "on legacy STATE\n"
    # a boot without config leaves tag 9 as it was
    after = node.volumed("meta", "get", node.system_disk, "9", "--offset", str(meta.offset)).stdout
    assert json.loads(after) == json.loads(TAG9)
    assert after == TAG9
