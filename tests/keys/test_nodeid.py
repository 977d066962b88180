"""nodeID: passphrase = node UUID + volume ID; Talos' entropy check and messages (notes/talos-behavior.md)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from volumed.keys import (
    EntropyCheckError,
    NodeIDKeyProvider,
    Passphrase,
    check_uuid_entropy,
    node_id_passphrase,
)

# (node UUID, volume ID, expected passphrase): the formula in the notes is plain string concatenation.
VECTORS = [
    (
        "12345678-1234-5678-1234-567812345678",
        "STATE",
        b"12345678-1234-5678-1234-567812345678STATE",
    ),
    (
        "12345678-1234-5678-1234-567812345678",
        "EPHEMERAL",
        b"12345678-1234-5678-1234-567812345678EPHEMERAL",
    ),
    (
        "4c4c4544-0044-3510-8052-b3c04f4a4d32",
        "u-data",
        b"4c4c4544-0044-3510-8052-b3c04f4a4d32u-data",
    ),
]


@pytest.mark.parametrize(("node_uuid", "volume_id", "expected"), VECTORS)
async def test_vectors(node_uuid: str, volume_id: str, expected: bytes) -> None:
    provider = NodeIDKeyProvider(slot=1, node_uuid=node_uuid, volume_id=volume_id)
    assert provider.kind == "nodeID"
    key = await provider.new_key()
    assert key.passphrase == Passphrase(expected)
    assert key.token is None
    assert await provider.get_key(None) == Passphrase(expected)


async def test_empty_uuid_message() -> None:
    provider = NodeIDKeyProvider(slot=0, node_uuid="", volume_id="STATE")
    with pytest.raises(EntropyCheckError) as info:
        await provider.get_key(None)
    assert str(info.value) == "machine UUID is not populated"
    with pytest.raises(EntropyCheckError, match=r"^machine UUID is not populated$"):
        await provider.new_key()


@pytest.mark.parametrize(
    "node_uuid",
    [
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "aaaa",  # 4 > 4 // 2
        "aab",  # 2 > 3 // 2
        "11111111-1111-1111-1111-123456789abc",
    ],
)
async def test_low_entropy_message(node_uuid: str) -> None:
    provider = NodeIDKeyProvider(slot=0, node_uuid=node_uuid, volume_id="STATE")
    with pytest.raises(EntropyCheckError) as info:
        await provider.get_key(None)
    assert str(info.value) == f"machine UUID {node_uuid} entropy check failed"


@pytest.mark.parametrize("node_uuid", ["ab", "aabb", "abab-", "00000000-0000-0000-1234-56789abcdef1"])
def test_exactly_half_passes(node_uuid: str) -> None:
    check_uuid_entropy(node_uuid)


def test_length_is_counted_in_utf8_bytes_like_go() -> None:
    # 'é' is 2 bytes: length 6, limit 3; 'a' occurs 3 times -> passes in Go (would fail counting characters).
    check_uuid_entropy("aaaéb")


@given(st.uuids())
def test_random_uuids_pass_and_concatenate(value: object) -> None:
    text = str(value)
    assert node_id_passphrase(text, "STATE").reveal() == text.encode() + b"STATE"


def test_empty_volume_id_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="volume ID is empty"):
        NodeIDKeyProvider(slot=0, node_uuid="12345678-1234-5678-1234-567812345678", volume_id="")
