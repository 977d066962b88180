"""``encryption.pbkdf`` takes argon2 only: Talos >= v1.12.7 cannot open pbkdf2 key slots.

go-blockdevice ``luks/header.go`` ``validateHeader`` (the version Talos v1.12.7 pins) refuses a LUKS2 header
with a key slot whose KDF is not argon2i or argon2id, so a volume volumed formatted with pbkdf2 would lock a
Talos node out. ``volumed luks`` keeps every KDF (tests/cli/luks).
"""

from __future__ import annotations

import pytest

from volumed.config import check_config, encryption_from_meta_json, load_config

REFUSED = (
    "encryption.pbkdf.type: pbkdf2 is not allowed: Talos (v1.12.7 and later) refuses to open a LUKS2 volume"
    " with pbkdf2 key slots (argon2id, argon2i)"
)
VOLUME = "apiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\nencryption:\n  keys: [{nodeID: {}}]\n"
USER = (
    "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: data\n"
    "provisioning: {diskSelector: {match: '!system_disk'}, minSize: 1GiB}\n"
    "encryption:\n  keys: [{nodeID: {}}]\n"
)


def issues(text: str) -> list[str]:
    config, found = check_config(text)
    assert config is None
    return [str(issue) for issue in found]


@pytest.mark.parametrize(
    ("document", "label"),
    [(VOLUME, "VolumeConfig/STATE"), (USER, "UserVolumeConfig/data")],
    ids=["volume", "user"],
)
def test_pbkdf2_is_refused_saying_why_and_where(document: str, label: str) -> None:
    assert issues(document + "  pbkdf: {type: pbkdf2, iterations: 1000}\n") == [f"{label}: {REFUSED}"]
    # no more than that one issue, whatever else the block says about pbkdf2
    assert issues(document + "  pbkdf: {type: pbkdf2, memory: 64, iterations: 10, parallel: 9}\n") == [
        f"{label}: {REFUSED}"
    ]


@pytest.mark.parametrize("kind", ["argon2id", "argon2i"])
def test_argon2_is_accepted(kind: str) -> None:
    config = load_config(USER + f"  pbkdf: {{type: {kind}, memory: 32, iterations: 4, parallel: 1}}\n")
    volume = config.user_volume("data")
    assert volume is not None
    encryption = volume.effective_encryption
    assert encryption is not None
    assert encryption.pbkdf is not None
    assert (encryption.pbkdf.type, encryption.pbkdf.memory, encryption.pbkdf.iterations) == (kind, 32, 4)


def test_other_kdfs_are_refused() -> None:
    assert issues(VOLUME + "  pbkdf: {type: scrypt}\n") == [
        "VolumeConfig/STATE: encryption.pbkdf.type: unsupported pbkdf type (argon2id, argon2i)"
    ]


def test_a_tag9_pbkdf2_block_of_an_older_volumed_is_dropped_not_refused() -> None:
    """STATE must still open from META without a config; its new key slots get the default KDF."""
    tag9 = (
        b'{"EncryptionProvider":"luks2","EncryptionKeys":[{"KeySlot":0,"KeyNodeID":{}}],"EncryptionCipher":"",'
        b'"EncryptionKeySize":0,"EncryptionBlockSize":0,"EncryptionPerfOptions":null,'
        b'"EncryptionPBKDF":{"Type":"pbkdf2","Memory":null,"Iterations":1000,"Parallel":null}}'
    )
    spec = encryption_from_meta_json(tag9)
    assert spec is not None
    assert spec.pbkdf is None
    argon = tag9.replace(
        b'"Type":"pbkdf2","Memory":null,"Iterations":1000', b'"Type":"argon2i","Memory":32,"Iterations":4'
    )
    kept = encryption_from_meta_json(argon)
    assert kept is not None
    assert kept.pbkdf is not None
    assert kept.pbkdf.type == "argon2i"
