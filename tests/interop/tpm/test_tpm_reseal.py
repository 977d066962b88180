"""Key-slot sync of a TPM slot whose config changed, against swtpm: a change of policy kind (signed PCR 11 <->
``volumedPcrOnly``) seals the slot again under the new policy; a reseal that fails (a PCR nothing was
measured into) is reported as a failed sync and the slot keeps its old key and token."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests._uki import make_uki, measure_uki_boot
from volumed.controllers.block._encryption import (
    Location,
    SlotKey,
    format_encrypted,
    open_encrypted,
    sync_key_slots,
)
from volumed.keys import StaticKeyProvider
from volumed.keys.tpm import TPMKeyProvider
from volumed.resources import EncryptionConfigSpec, PbkdfSpec
from volumed.storage.luks2 import Luks2Volume, NoKeyError

if TYPE_CHECKING:
    from pathlib import Path

    from tests._swtpm import Swtpm
    from tests._uki import UKI

ENC = EncryptionConfigSpec(pbkdf=PbkdfSpec(type="pbkdf2", iterations=1000), key_size_bits=256)
RECOVERY = SlotKey(0, "static", StaticKeyProvider(slot=0, passphrase=b"recovery"))


def _image(tmp_path: Path) -> Location:
    path = tmp_path / "disk.img"
    with path.open("wb") as image:
        image.truncate(32 << 20)
    return Location(str(path))


def _token(location: Location) -> dict[str, Any]:
    with Luks2Volume.open(location.path, read_only=True) as volume:
        return dict(volume.tokens[1].to_dict())


def _opens(location: Location, passphrase: bytes) -> bool:
    with Luks2Volume.open(location.path, read_only=True) as volume:
        try:
            volume.unlock(passphrase, keyslot=1)
        except NoKeyError:
            return False
    return True


def _signed(swtpm: Swtpm, uki: UKI, pcrs: tuple[int, ...] = (7,)) -> SlotKey:
    return SlotKey(1, "tpm", uki.provider(swtpm, pcrs=pcrs))


def _pcr_only(swtpm: Swtpm) -> SlotKey:
    return SlotKey(1, "tpm", TPMKeyProvider(1, tcti=swtpm.tcti, pcr_only=True))


async def test_signed_and_pcr_only_seal_the_slot_again(swtpm: Swtpm, tmp_path: Path) -> None:
    uki = make_uki(tmp_path / "uki", swtpm)
    measure_uki_boot(swtpm, uki)
    location = _image(tmp_path)
    await format_encrypted(location, ENC, [RECOVERY, _signed(swtpm, uki)])
    assert _token(location)["UserData"]["pubkey_pcrs"] == [11]

    opened = await open_encrypted(location, ENC, [RECOVERY, _pcr_only(swtpm)])
    assert opened.failed_syncs == []
    pcr_only = _token(location)
    assert pcr_only["UserData"]["pubkey_pcrs"] == []
    key = await TPMKeyProvider(1, tcti=swtpm.tcti, pcr_only=True).get_key(pcr_only)
    assert _opens(location, key.reveal())

    assert await sync_key_slots(location, ENC, [RECOVERY, _signed(swtpm, uki)], opened) == []
    signed = _token(location)
    assert signed["UserData"]["pubkey_pcrs"] == [11]
    assert _opens(location, (await uki.provider(swtpm).get_key(signed)).reveal())
    assert not _opens(location, key.reveal())


async def test_a_reseal_that_fails_is_reported_and_keeps_the_old_token(swtpm: Swtpm, tmp_path: Path) -> None:
    uki = make_uki(tmp_path / "uki", swtpm)
    measure_uki_boot(swtpm, uki)
    location = _image(tmp_path)
    await format_encrypted(location, ENC, [RECOVERY, _signed(swtpm, uki)])
    before = _token(location)

    opened = await open_encrypted(location, ENC, [RECOVERY, _signed(swtpm, uki, pcrs=(7, 9))])
    [failed] = opened.failed_syncs
    assert failed.startswith("error updating key slot 1 tpm: ")
    assert "PCR 9 (sha256) is populated with all zeroes" in failed
    assert _token(location) == before
    assert _opens(location, (await uki.provider(swtpm).get_key(before)).reveal())
