"""A configured key slot this library cannot use (its key-slot area in a cipher it does not implement,
a digest hash it does not know) is reported with the slot and the reason when no key opens the volume; it
said only "No usable keyslot is available.", as for a wrong passphrase (adiantum review). A wrong passphrase
still gets that one message, which says nothing about the passphrase."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.storage.luks2.test_luks2_hostile_params import rewrite, setter
from volumed.controllers.block._encryption import (
    Location,
    NoUsableKeyError,
    SlotKey,
    format_encrypted,
    open_encrypted,
)
from volumed.keys import StaticKeyProvider
from volumed.resources import EncryptionConfigSpec, PbkdfSpec

ENC = EncryptionConfigSpec(pbkdf=PbkdfSpec(type="pbkdf2", iterations=1000), key_size_bits=256)


def static(slot: int, passphrase: bytes) -> SlotKey:
    return SlotKey(slot, "static", StaticKeyProvider(slot=slot, passphrase=passphrase))


@pytest.fixture
async def image(tmp_path: Path) -> Location:
    path = tmp_path / "disk.img"
    with path.open("wb") as f:
        f.truncate(32 * 1024 * 1024)
    location = Location(str(path))
    await format_encrypted(location, ENC, [static(0, b"first"), static(1, b"second")])
    return location


@pytest.mark.parametrize(
    ("where", "value", "reason"),
    [
        (
            ("keyslots", "0", "area", "encryption"),
            "serpent-xts-plain64",
            "key slot unusable: area: unsupported cipher 'serpent-xts-plain64'",
        ),
        (
            ("digests", "0", "hash"),
            "nonsense",
            "key slots of this digest are unusable: digest hash 'nonsense'",
        ),
    ],
)
async def test_an_unusable_slot_is_reported_with_its_reason(
    image: Location, where: tuple[str, ...], value: str, reason: str
) -> None:
    rewrite(Path(image.path), setter(*where, value=value))
    with pytest.raises(NoUsableKeyError) as error:
        await open_encrypted(image, ENC, [static(0, b"first"), static(1, b"wrong")])
    message = str(error.value)
    first, second = message.removeprefix("failed to open the volume: ").split("; ")
    assert first.startswith("slot 0 (static): ")
    assert reason in first, message
    if where[0] == "keyslots":  # slot 1 is usable: a wrong passphrase there is the one opaque message
        assert second == "slot 1 (static): No usable keyslot is available."
    assert "first" not in message  # no passphrase in the message
    assert "wrong" not in message


async def test_an_unusable_configured_slot_is_enrolled_again_saying_why(image: Location) -> None:
    rewrite(Path(image.path), setter("keyslots", "0", "area", "encryption", value="serpent-xts-plain64"))
    with capture_logs() as logs:
        opened = await open_encrypted(image, ENC, [static(0, b"first"), static(1, b"second")])
    assert (opened.slot, opened.failed_syncs) == (1, [])
    warned = [r for r in logs if r["event"] == "configured key slot is unusable here; enrolling it again"]
    assert len(warned) == 1, logs
    assert warned[0]["slot"] == 0
    assert "unsupported cipher 'serpent-xts-plain64'" in warned[0]["reason"]
    again = await open_encrypted(image, ENC, [static(0, b"first"), static(1, b"second")])
    assert again.slot == 0  # enrolled again with its configured key, in a cipher this library uses
