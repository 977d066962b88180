"""Key-slot sync never leaves a volume with fewer working keys than one (issue 15, item 2).

The crash windows are in test_key_change_crash.py; these are the decisions: a slot not in the config is kept
while no configured slot holds its key, and a key change with no room for the new key material fails with
the old key kept (it is never killed first).
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_tool
from volumed.controllers.block._encryption import (
    Location,
    SlotKey,
    format_encrypted,
    open_encrypted,
    sync_key_slots,
)
from volumed.keys import KeyUnavailableError, StaticKeyProvider
from volumed.keys.testing import FakeKeyProvider
from volumed.resources import EncryptionConfigSpec, PbkdfSpec
from volumed.storage.luks2 import Luks2Volume

if TYPE_CHECKING:
    from pathlib import Path

ENC = EncryptionConfigSpec(pbkdf=PbkdfSpec(type="pbkdf2", iterations=1000), key_size_bits=256)


def static(slot: int, passphrase: bytes) -> SlotKey:
    return SlotKey(slot, "static", StaticKeyProvider(slot=slot, passphrase=passphrase))


def slots(location: Location) -> list[int]:
    with Luks2Volume.open(location.path, read_only=True) as volume:
        return sorted(volume.keyslots)


def cryptsetup_opens(location: Location, passphrase: bytes, slot: int) -> bool:
    result = subprocess.run(
        [require_tool("cryptsetup"), "open", "--test-passphrase", "--key-slot", str(slot),
         "--key-file", "-", location.path],
        input=passphrase, capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    return result.returncode == 0


@pytest.fixture
def image(tmp_path: Path) -> Location:
    path = tmp_path / "disk.img"
    with path.open("wb") as f:
        f.truncate(32 * 1024 * 1024)
    return Location(str(path))


@pytest.mark.parametrize(
    "new_key",
    [
        SlotKey(1, "kms", None, "KMS unreachable"),
        SlotKey(1, "kms", FakeKeyProvider(slot=1, kind="kms", error=KeyUnavailableError("KMS unreachable"))),
    ],
    ids=["no-provider", "provider-fails"],
)
async def test_the_last_working_slot_is_kept_until_a_configured_one_works(
    image: Location, new_key: SlotKey
) -> None:
    """The config moves the only key to another slot whose key cannot be made now: slot 0 used to be
    killed as 'not configured', leaving no key slot at all."""
    opened = await format_encrypted(image, ENC, [static(0, b"first")])
    failed = await sync_key_slots(image, ENC, [new_key], opened)
    assert failed == [
        "error adding key slot 1 kms: KMS unreachable",
        "keeping key slot 0: no configured key slot holds its key yet",
    ]
    assert slots(image) == [0]
    assert cryptsetup_opens(image, b"first", 0)

    working = SlotKey(1, "static", StaticKeyProvider(slot=1, passphrase=b"second"))
    assert await sync_key_slots(image, ENC, [working], opened) == []  # once slot 1 works, slot 0 goes
    assert slots(image) == [1]
    assert cryptsetup_opens(image, b"second", 1)


@pytest.fixture
def full_image(tmp_path: Path) -> Location:
    """A volume made by cryptsetup whose key slot area holds one key slot: no room to enrol a second."""
    path, key = tmp_path / "full.img", tmp_path / "key"
    with path.open("wb") as f:
        f.truncate(32 * 1024 * 1024)
    key.write_bytes(b"first")
    subprocess.run(
        [require_tool("cryptsetup"), "luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2",
         "--pbkdf-force-iterations", "1000", "--luks2-keyslots-size", "256k", str(path), str(key)],
        check=True, capture_output=True,
    )  # fmt: skip
    return Location(str(path))


async def test_a_key_change_without_room_for_the_new_key_keeps_the_old_one(full_image: Location) -> None:
    image = full_image
    opened = await open_encrypted(image, ENC, [static(0, b"first")])
    failed = await sync_key_slots(image, ENC, [static(0, b"second")], opened)
    assert len(failed) == 1
    assert failed[0].startswith("error updating key slot 0 static: ")
    assert "key slot 0 keeps its old key: no gap of 258048 bytes left in the key slot area" in failed[0]
    assert slots(image) == [0]
    assert cryptsetup_opens(image, b"first", 0)
    assert not cryptsetup_opens(image, b"second", 0)
