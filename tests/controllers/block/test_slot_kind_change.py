"""A configured kms slot whose token is missing, of another type or malformed (its kind changed in the config,
e.g. static -> kms on slot 1) is enrolled again in one sync with a fresh key and token from a real KMS server
(ours, in-process), add-first: the volume always has a configured key that opens it. And back (kms -> static):
the KMS token goes with the old key.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest

from volumed.controllers.block._encryption import (
    Location,
    SlotKey,
    format_encrypted,
    open_encrypted,
    sync_key_slots,
)
from volumed.keys import StaticKeyProvider
from volumed.keys.kms import KMSKeyProvider, KMSServer, MasterKeyRing
from volumed.resources import EncryptionConfigSpec, PbkdfSpec
from volumed.storage.luks2 import Luks2Volume, NoKeyError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

NODE = "5ba2b8a4-3c1e-4f43-9d2f-8a1b7c6d5e4f"
ENC = EncryptionConfigSpec(pbkdf=PbkdfSpec(type="pbkdf2", iterations=1000), key_size_bits=256)


@pytest.fixture(autouse=True)
def _grpc_logs_at_warning() -> Iterator[None]:
    """grpc's Cython DEBUG records under pytest's log capture crashed the interpreter (tests/interop/kms)."""
    grpc_logger = logging.getLogger("grpc")
    saved = grpc_logger.level
    grpc_logger.setLevel(logging.WARNING)
    yield
    grpc_logger.setLevel(saved)


@pytest.fixture
async def endpoint() -> AsyncIterator[str]:
    async with KMSServer(MasterKeyRing.generate(), listen="127.0.0.1:0") as server:
        yield f"grpc://127.0.0.1:{server.port}"


@pytest.fixture
def image(tmp_path: Path) -> Location:
    path = tmp_path / "disk.img"
    with path.open("wb") as f:
        f.truncate(32 * 1024 * 1024)
    return Location(str(path))


def static(slot: int, passphrase: bytes) -> SlotKey:
    return SlotKey(slot, "static", StaticKeyProvider(slot=slot, passphrase=passphrase))


def kms(slot: int, endpoint: str) -> SlotKey:
    return SlotKey(slot, "kms", KMSKeyProvider(slot=slot, endpoint=endpoint, node_uuid=NODE))


def tokens(location: Location) -> dict[int, dict[str, Any]]:
    with Luks2Volume.open(location.path, read_only=True) as volume:
        return {token_id: dict(token.to_dict()) for token_id, token in volume.tokens.items()}


def opens_with(location: Location, slot: int, passphrase: bytes) -> bool:
    with Luks2Volume.open(location.path, read_only=True) as volume:
        try:
            volume.unlock(passphrase, keyslot=slot)
        except NoKeyError:
            return False
    return True


async def opens_with_kms(location: Location, slot: int, endpoint: str) -> bool:
    provider = kms(slot, endpoint).provider
    assert provider is not None
    passphrase = await provider.get_key(tokens(location).get(slot))
    return opens_with(location, slot, passphrase.reveal())


def put_token(location: Location, token_id: int, body: dict[str, Any]) -> None:
    with Luks2Volume.open(location.path) as volume:
        volume.import_token(body, token_id=token_id, replace_existing=True)


async def test_static_to_kms_on_slot_1_converges_in_one_sync(image: Location, endpoint: str) -> None:
    await format_encrypted(image, ENC, [static(0, b"recovery"), static(1, b"slot one")])
    opened = await open_encrypted(image, ENC, [static(0, b"recovery"), kms(1, endpoint)])
    assert (opened.slot, opened.failed_syncs) == (0, [])
    assert tokens(image)[1]["type"] == "sideroKMS"
    assert await opens_with_kms(image, 1, endpoint)
    assert not opens_with(image, 1, b"slot one")
    assert opens_with(image, 0, b"recovery")


@pytest.mark.parametrize(
    "foreign",
    [
        {"type": "talos-tpm2", "keyslots": [], "UserData": {"sealed_blob_private": "AA=="}},
        {"type": "sideroKMS", "keyslots": [], "UserData": {}},
        {"type": "sideroKMS", "keyslots": [], "UserData": {"sealedData": "not base64!"}},
    ],
    ids=["tpm-token", "no-sealed-data", "bad-sealed-data"],
)
async def test_kms_slot_with_a_foreign_or_invalid_token_is_enrolled_again(
    image: Location, endpoint: str, foreign: dict[str, Any]
) -> None:
    await format_encrypted(image, ENC, [static(0, b"recovery"), static(1, b"slot one")])
    put_token(image, 1, foreign)
    opened = await open_encrypted(image, ENC, [static(0, b"recovery"), kms(1, endpoint)])
    assert opened.failed_syncs == []
    assert tokens(image)[1]["type"] == "sideroKMS"
    assert tokens(image)[1] != foreign
    assert await opens_with_kms(image, 1, endpoint)
    assert not opens_with(image, 1, b"slot one")


async def test_kms_back_to_static_drops_the_kms_token(image: Location, endpoint: str) -> None:
    await format_encrypted(image, ENC, [static(0, b"recovery"), kms(1, endpoint)])
    assert tokens(image)[1]["type"] == "sideroKMS"
    opened = await open_encrypted(image, ENC, [static(0, b"recovery"), static(1, b"static again")])
    assert opened.failed_syncs == []
    assert 1 not in tokens(image)
    assert opens_with(image, 1, b"static again")


async def test_the_slot_that_opened_changes_kind_while_open(image: Location, endpoint: str) -> None:
    await format_encrypted(image, ENC, [static(1, b"slot one")])
    opened = await open_encrypted(image, ENC, [static(1, b"slot one")])
    assert await sync_key_slots(image, ENC, [kms(1, endpoint)], opened) == []
    assert (opened.slot, opened.kind) == (1, "kms")
    assert await opens_with_kms(image, 1, endpoint)
    assert not opens_with(image, 1, b"slot one")
    again = await open_encrypted(image, ENC, [kms(1, endpoint)])
    assert (again.slot, again.kind, again.failed_syncs) == (1, "kms", [])


async def test_kind_change_with_the_kms_down_keeps_the_old_key(image: Location) -> None:
    await format_encrypted(image, ENC, [static(1, b"slot one")])
    opened = await open_encrypted(image, ENC, [static(1, b"slot one")])
    down = kms(1, "grpc://127.0.0.1:9")  # discard port: nothing listens
    failed = await sync_key_slots(image, ENC, [down], opened)
    assert len(failed) == 1
    assert failed[0].startswith("error updating key slot 1 kms: ")
    assert opens_with(image, 1, b"slot one")
    assert 1 not in tokens(image)
