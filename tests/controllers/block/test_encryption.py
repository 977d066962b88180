"""Encrypt, open and key-slot sync on real LUKS2 images: Talos' semantics with one KDF run per boot."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from tests._tools import require_tool
from volumed.controllers.block._encryption import (
    Location,
    NoUsableKeyError,
    SlotKey,
    format_encrypted,
    open_encrypted,
    sync_key_slots,
)
from volumed.keys import KeyProviderError, NewKey, NodeIDKeyProvider, StaticKeyProvider
from volumed.resources import EncryptionConfigSpec, PbkdfSpec
from volumed.storage.luks2 import Luks2Volume, NoKeyError
from volumed.storage.slotcheck import SLOT_CHECK_TOKEN_TYPE

if TYPE_CHECKING:
    from pathlib import Path

NODE = "5ba2b8a4-3c1e-4f43-9d2f-8a1b7c6d5e4f"
FAST = PbkdfSpec(type="pbkdf2", iterations=1000)
ENC = EncryptionConfigSpec(pbkdf=FAST, key_size_bits=256)


def static(slot: int, passphrase: bytes) -> SlotKey:
    return SlotKey(slot, "static", StaticKeyProvider(slot=slot, passphrase=passphrase))


def node_id(slot: int) -> SlotKey:
    return SlotKey(slot, "nodeID", NodeIDKeyProvider(slot=slot, node_uuid=NODE, volume_id="EPHEMERAL"))


@pytest.fixture
def image(tmp_path: Path) -> Location:
    path = tmp_path / "disk.img"
    with path.open("wb") as f:
        f.truncate(32 * 1024 * 1024)
    return Location(str(path))


def slots(location: Location) -> list[int]:
    with Luks2Volume.open(location.path, read_only=True) as volume:
        return sorted(volume.keyslots)


async def test_format_then_open_costs_one_kdf_run(image: Location) -> None:
    keys = [static(0, b"first"), node_id(1)]
    formatted = await format_encrypted(image, ENC, keys)
    assert formatted.slot == 0
    assert formatted.failed_syncs == []
    assert slots(image) == [0, 1]
    with Luks2Volume.open(image.path, read_only=True) as volume:
        assert any(t.type == SLOT_CHECK_TOKEN_TYPE for t in volume.tokens.values())
        # the fingerprints sit at token 31, as they always did (the kernel tier checks it against cryptsetup);
        # the mkfs-pending mark of a new volume takes a lower id
        assert volume.tokens[31].type == SLOT_CHECK_TOKEN_TYPE

    opened = await open_encrypted(image, ENC, keys)
    assert (opened.slot, opened.kind) == (0, "static")
    assert opened.volume_key == formatted.volume_key
    assert opened.kdf_runs == 1  # slot 1 checked by its fingerprint, not by a test unlock
    assert opened.failed_syncs == []


async def test_falls_back_to_the_next_key(image: Location) -> None:
    await format_encrypted(image, ENC, [static(0, b"first"), node_id(1)])
    opened = await open_encrypted(image, ENC, [static(0, b"wrong"), node_id(1)])
    assert (opened.slot, opened.kind) == (1, "nodeID")
    # slot 0 did not match its config: it was enrolled again with the configured passphrase
    again = await open_encrypted(image, ENC, [static(0, b"wrong"), node_id(1)])
    assert (again.slot, again.kind) == (0, "static")


async def test_rotation_adds_and_removes_slots(image: Location) -> None:
    await format_encrypted(image, ENC, [static(0, b"first")])
    await open_encrypted(image, ENC, [static(0, b"first"), static(2, b"second")])
    assert slots(image) == [0, 2]
    opened = await open_encrypted(image, ENC, [static(2, b"second")])
    assert opened.slot == 2
    assert slots(image) == [2]
    with pytest.raises(NoUsableKeyError, match=r"slot 0 \(static\): key slot is not in the header"):
        await open_encrypted(image, ENC, [static(0, b"first")])


async def test_unavailable_key_is_reported_and_its_slot_kept(image: Location) -> None:
    await format_encrypted(image, ENC, [static(0, b"first"), static(1, b"second")])
    keys = [static(0, b"first"), SlotKey(1, "kms", None, "KMS unreachable")]
    opened = await open_encrypted(image, ENC, keys)
    assert opened.failed_syncs == ["error updating key slot 1 kms: KMS unreachable"]
    assert slots(image) == [0, 1]


async def test_no_key_opens(image: Location) -> None:
    await format_encrypted(image, ENC, [static(0, b"first")])
    with pytest.raises(NoUsableKeyError) as error:
        await open_encrypted(image, ENC, [static(0, b"nope"), SlotKey(3, "tpm", None, "no TPM")])
    assert "No usable keyslot" in str(error.value)
    assert "slot 3 (tpm): no TPM" in str(error.value)
    assert "nope" not in str(error.value)


async def test_cryptsetup_accepts_our_tokens_and_slots(image: Location, tmp_path: Path) -> None:
    cryptsetup = require_tool("cryptsetup")
    await format_encrypted(image, ENC, [static(0, b"first"), node_id(1)])
    key_file = tmp_path / "key"
    key_file.write_bytes(NODE.encode() + b"EPHEMERAL")
    await anyio.run_process(
        [cryptsetup, "open", "--test-passphrase", "--key-slot", "1", "--key-file", str(key_file), image.path]
    )
    dump = await anyio.run_process([cryptsetup, "luksDump", image.path])
    assert SLOT_CHECK_TOKEN_TYPE in dump.stdout.decode()


def opens_with(location: Location, slot: int, passphrase: bytes) -> bool:
    with Luks2Volume.open(location.path, read_only=True) as volume:
        try:
            volume.unlock(passphrase, keyslot=slot)
        except NoKeyError:
            return False
    return True


async def test_a_new_key_for_the_slot_that_opened_is_enrolled_while_open(image: Location) -> None:
    """The documented rotation (change one key, keep the other) on the slot that opened the volume: it used to
    be skipped as "the slot that opened", so after the other slot was removed no configured key opened it."""
    keys = [static(0, b"first"), static(1, b"recovery")]
    await format_encrypted(image, ENC, keys)
    opened = await open_encrypted(image, ENC, keys)
    assert opened.slot == 0

    rotated = [static(0, b"newpass"), static(1, b"recovery")]
    assert await sync_key_slots(image, ENC, rotated, opened) == []
    assert opens_with(image, 0, b"newpass")
    assert not opens_with(image, 0, b"first")

    runs = opened.kdf_runs
    assert await sync_key_slots(image, ENC, rotated, opened) == []  # nothing changed: checked by fingerprint
    assert opened.kdf_runs == runs

    assert await sync_key_slots(image, ENC, [static(0, b"newpass")], opened) == []
    assert slots(image) == [0]
    again = await open_encrypted(image, ENC, [static(0, b"newpass")])
    assert (again.slot, again.kdf_runs) == (0, 1)


async def test_an_unchanged_slot_that_opened_is_left_alone_while_open(image: Location) -> None:
    keys = [static(0, b"first"), static(1, b"recovery")]
    await format_encrypted(image, ENC, keys)
    opened = await open_encrypted(image, ENC, keys)
    runs = opened.kdf_runs
    assert await sync_key_slots(image, ENC, [static(0, b"first"), static(2, b"third")], opened) == []
    assert slots(image) == [0, 2]
    assert opened.kdf_runs == runs  # slot 0 checked by its fingerprint: no test unlock
    assert opens_with(image, 0, b"first")


class _CannotMakeNewKeys(StaticKeyProvider):
    """A provider that reads its key but cannot make a new one (a KMS that stops answering in between)."""

    async def new_key(self) -> NewKey:
        raise KeyProviderError("KMS unreachable")


async def test_a_slot_is_not_killed_when_its_new_key_cannot_be_made(image: Location) -> None:
    keys = [static(0, b"first"), static(1, b"recovery")]
    await format_encrypted(image, ENC, keys)
    opened = await open_encrypted(image, ENC, keys)
    failing = SlotKey(1, "kms", _CannotMakeNewKeys(slot=1, passphrase=b"changed"))
    failed = await sync_key_slots(image, ENC, [static(0, b"first"), failing], opened)
    assert failed == ["error updating key slot 1 kms: KMS unreachable"]
    assert opens_with(image, 1, b"recovery")  # it used to be killed before the new key was asked for
