"""The master key file: format, validation with clear errors, atomic 0600 writes, rotation."""

import base64
import stat
from pathlib import Path

import pytest

from volumed.keys.kms import (
    MasterKey,
    MasterKeyFileError,
    MasterKeyRing,
    decode_master_key_file,
    encode_master_key_file,
    load_master_key_file,
    save_master_key_file,
)


def test_round_trip_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    ring = MasterKeyRing.generate().rotated()
    save_master_key_file(path, ring, exclusive=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key_file(path) == ring
    assert [p.name for p in tmp_path.iterdir()] == ["keys.yaml"]


def test_exclusive_create_never_replaces(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    save_master_key_file(path, MasterKeyRing.generate(), exclusive=True)
    before = path.read_bytes()
    with pytest.raises(MasterKeyFileError, match="already exists"):
        save_master_key_file(path, MasterKeyRing.generate(), exclusive=True)
    assert path.read_bytes() == before
    rotated = load_master_key_file(path).rotated()
    save_master_key_file(path, rotated, exclusive=False)
    assert load_master_key_file(path) == rotated


def test_repr_never_shows_keys() -> None:
    ring = MasterKeyRing.generate()
    key = ring.primary.key
    for text in (repr(ring), repr(ring.primary), str(ring)):
        assert key.hex() not in text
        assert base64.b64encode(key).decode() not in text


def test_generated_ids_are_unique_and_valid() -> None:
    ids = {MasterKey.generate().key_id for _ in range(20)}
    assert len(ids) == 20


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2", "not valid YAML"),
        ("[]", "expected a mapping with version, primary, keys"),
        ("version: 2\nprimary: a\nkeys: []", "unsupported version 2 (expected 1)"),
        ("version: 1\nprimary: a\nkeys: []", "'keys' must be a non-empty list"),
        ("version: 1\nprimary: a\nkeys: [5]", "keys[0]: expected a mapping with id, key"),
        ("version: 1\nprimary: a\nkeys: [{id: 1, key: x}]", "keys[0]: 'id' must be a string"),
        ("version: 1\nprimary: a\nkeys: [{id: a}]", "keys[0] (a): 'key' must be a base64 string"),
        ("version: 1\nprimary: a\nkeys: [{id: a, key: '!!'}]", "keys[0] (a): 'key' is not valid base64"),
        (
            "version: 1\nprimary: a\nkeys: [{id: a, key: AAAA}]",
            "keys[0]: master key 'a' is 3 bytes, expected 32",
        ),
        ("version: 1\nprimary: a\nkeys: [{id: 'a b', key: AAAA}]", "keys[0]: master key id 'a b' must be"),
        ("version: 1\nprimary: b\nkeys: [{id: a, key: KEY}]", "primary master key 'b' is not among the keys"),
        ("version: 1\nkeys: [{id: a, key: KEY}]", "'primary' must name a key id"),
        (
            "version: 1\nprimary: a\nkeys: [{id: a, key: KEY}, {id: a, key: KEY}]",
            "duplicate master key ids: a",
        ),
    ],
)
def test_invalid_files(text: str, message: str) -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    with pytest.raises(MasterKeyFileError) as info:
        decode_master_key_file(text.replace("KEY", key).encode(), path="/etc/kms.yaml")
    assert str(info.value).startswith("master key file /etc/kms.yaml: ")
    assert message in str(info.value)
    assert key not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyFileError, match=r"master key file .*/none.yaml: cannot read: No such file"):
        load_master_key_file(tmp_path / "none.yaml")


def test_encoded_file_documents_rotation() -> None:
    text = encode_master_key_file(MasterKeyRing.generate()).decode()
    assert text.startswith("# volumed KMS master keys")
    assert "volumed kms keygen --rotate" in text


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666])
def test_a_file_group_or_others_can_access_is_refused(tmp_path: Path, mode: int) -> None:
    """As ssh refuses an unprotected private key: whoever reads the file unseals every node's keys."""
    path = tmp_path / "keys.yaml"
    save_master_key_file(path, MasterKeyRing.generate(), exclusive=True)
    path.chmod(mode)
    with pytest.raises(MasterKeyFileError) as info:
        load_master_key_file(path)
    assert str(info.value) == (
        f"master key file {path}: permissions {mode:04o} are too open: it must not be readable or writable "
        f"by group or others (chmod 600 {path})"
    )


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_file_only_its_owner_can_access_is_accepted(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "keys.yaml"
    ring = MasterKeyRing.generate()
    save_master_key_file(path, ring, exclusive=True)
    path.chmod(mode)
    assert load_master_key_file(path) == ring
