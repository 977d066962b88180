"""The server's blob format: key-id prefix + nonce + AES-256-GCM(ciphertext||tag), node UUID as AAD."""

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from volumed.keys.kms import (
    BlobAuthenticationError,
    BlobFormatError,
    MasterKey,
    MasterKeyRing,
    UnknownMasterKeyError,
    blob_key_id,
    seal_blob,
    unseal_blob,
)

NODE = "12345678-1234-5678-1234-567812345678"
KEY_A = MasterKey("a", bytes(range(32)))
RING = MasterKeyRing((KEY_A,), "a")


def test_layout_vector() -> None:
    nonce = bytes(range(200, 212))
    data = bytes(32)
    blob = seal_blob(RING, NODE, data, nonce=nonce)
    expected_ct = AESGCM(KEY_A.key).encrypt(nonce, data, NODE.encode())
    assert blob == b"\x01\x01a" + nonce + expected_ct
    assert len(blob) == 3 + 12 + 32 + 16
    assert blob_key_id(blob) == "a"


@given(data=st.binary(min_size=1, max_size=64), node=st.text(min_size=1, max_size=40))
def test_round_trip(data: bytes, node: str) -> None:
    assert unseal_blob(RING, node, seal_blob(RING, node, data)) == data


def test_nonce_is_fresh_per_blob() -> None:
    assert seal_blob(RING, NODE, bytes(32)) != seal_blob(RING, NODE, bytes(32))


def test_wrong_node_and_tampering_fail_authentication() -> None:
    blob = seal_blob(RING, NODE, bytes(32))
    with pytest.raises(BlobAuthenticationError, match="does not belong to this node or was altered"):
        unseal_blob(RING, NODE.replace("1", "2", 1), blob)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(BlobAuthenticationError):
        unseal_blob(RING, NODE, tampered)


def test_rotation_keeps_old_blobs() -> None:
    old_blob = seal_blob(RING, NODE, b"k" * 32)
    rotated = RING.rotated(MasterKey("b", bytes(range(32, 64))))
    assert rotated.primary_id == "b"
    new_blob = seal_blob(rotated, NODE, b"n" * 32)
    assert (blob_key_id(old_blob), blob_key_id(new_blob)) == ("a", "b")
    assert unseal_blob(rotated, NODE, old_blob) == b"k" * 32
    assert unseal_blob(rotated, NODE, new_blob) == b"n" * 32
    without_a = MasterKeyRing((rotated.get("b"),), "b")
    with pytest.raises(
        UnknownMasterKeyError, match="sealed with master key 'a', which this server does not have"
    ):
        unseal_blob(without_a, NODE, old_blob)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "not a version-1 blob"),
        (b"\x02\x01a" + bytes(60), "not a version-1 blob"),
        (b"\x01\x00" + bytes(60), "truncated"),
        (b"\x01\x05abc", "truncated"),
        (b"\x01\x01\xff" + bytes(60), "malformed master key id"),
    ],
)
def test_malformed_blobs(blob: bytes, message: str) -> None:
    with pytest.raises(BlobFormatError, match=message):
        unseal_blob(RING, NODE, blob)
