"""A header cryptsetup 2.6.1 wrote (data/README.md has its provenance): read, unlock, re-serialise."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from volumed.storage.luks2 import Luks2Volume, NoKeyError

DATA = Path(__file__).parent / "data"
VOLUME_KEY = bytes.fromhex("6187d6bb5b0328e9ce368e0c40056923abc369996d28a1dec16758d04f323cfd")


@pytest.fixture
def volume() -> Luks2Volume:
    raw = gzip.decompress((DATA / "cryptsetup-2.6.1-detached.hdr.gz").read_bytes())
    return Luks2Volume.from_files(io.BytesIO(), header_file=io.BytesIO(raw), read_only=True)


def test_header_fields(volume: Luks2Volume) -> None:
    assert volume.seqid == 5
    assert volume.uuid == "56c78833-ff03-48cb-80bf-50efc4f07ed0"
    assert volume.label == "vector"
    assert list(volume.keyslots) == [0, 3]
    assert volume.segment.offset == 0
    assert volume.segment.sector_size == 4096


def test_json_reserialises_byte_identical(volume: Luks2Volume) -> None:
    assert volume.metadata.to_json().decode("utf-8") == volume.json_text
    assert "ünïcode/slash" in volume.json_text


@pytest.mark.parametrize(("passphrase", "slot"), [(b"vector passphrase", 0), (b"second", 3)])
def test_unlock_gives_cryptsetups_volume_key(volume: Luks2Volume, passphrase: bytes, slot: int) -> None:
    key = volume.unlock(passphrase)
    assert key.material == VOLUME_KEY
    assert key.keyslot == slot
    assert volume.unlock(passphrase, keyslot=slot).material == VOLUME_KEY


def test_wrong_slot_or_passphrase(volume: Luks2Volume) -> None:
    with pytest.raises(NoKeyError):
        volume.unlock(b"second", keyslot=0)
    with pytest.raises(NoKeyError):
        volume.unlock(b"nope")


def test_token_export(volume: Luks2Volume) -> None:
    assert volume.export_token(1) == '{"type":"vector-token","keyslots":["3"],"note":"ünïcode/slash"}'
