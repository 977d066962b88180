"""Two header copies: bad checksums, stale seqids, a lost primary (secondary scan), garbage and truncation."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import pytest

from tests.storage.luks2._luks2_helpers import MIB, PASS, format_small, image
from volumed.storage.luks2 import InvalidHeaderError, Luks2Volume, NotLuks2Error
from volumed.storage.luks2.lowlevel import HEADER_SIZES, BinaryHeader, Region, load

if TYPE_CHECKING:
    from pathlib import Path


def _copy(path: Path, at: int) -> BinaryHeader:
    return BinaryHeader.parse(path.read_bytes()[at : at + 4096], where=at)


def _poke(path: Path, at: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(data)


@pytest.mark.parametrize("which", ["primary", "secondary"])
def test_corrupt_copy_is_repaired_with_a_fresh_salt(tmp_path: Path, which: str) -> None:
    path = tmp_path / "d.img"
    format_small(path).close()
    hdr = 16384
    bad_at = 0 if which == "primary" else hdr
    good_at = hdr - bad_at
    old_bad_salt = _copy(path, bad_at).salt
    _poke(path, bad_at + 4096 + 100, b"\x01")  # inside the JSON area: checksum mismatch
    with open(path, "rb") as f:
        state = load(Region(f))
    assert state.problems == (f"{which} header is invalid",)
    with Luks2Volume.open(path) as vol:
        assert vol.unlock(PASS).keyslot == 0
        assert vol.repair()  # opening alone never writes
    repaired, good = _copy(path, bad_at), _copy(path, good_at)
    assert repaired.seqid == good.seqid
    assert repaired.salt not in (old_bad_salt, good.salt)
    raw = path.read_bytes()
    assert raw[4096:hdr] == raw[hdr + 4096 : 2 * hdr]
    with open(path, "rb") as f:
        assert load(Region(f)).problems == ()


def test_stale_copy_loses_and_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "d.img"
    with format_small(path) as vol:
        old_secondary = path.read_bytes()[16384 : 2 * 16384]
        vol.set_label(label="newer")
    _poke(path, 16384, old_secondary)  # secondary now holds seqid 3, primary seqid 4
    with Luks2Volume.open(path, read_only=True) as vol:
        assert (vol.seqid, vol.label) == (4, "newer")
    with Luks2Volume.open(path, repair=True) as vol:
        assert vol.seqid == 4
    assert _copy(path, 16384).seqid == 4
    assert _copy(path, 16384).label == "newer"


@pytest.mark.parametrize("size", HEADER_SIZES)
def test_lost_primary_found_by_scanning_secondary_offsets(tmp_path: Path, size: int) -> None:
    path = tmp_path / "d.img"
    format_small(image(path, 2 * size + 2 * MIB), metadata_size=size).close()
    _poke(path, 0, bytes(4096))
    with Luks2Volume.open(path) as vol:
        assert vol.metadata_size == size
        assert vol.unlock(PASS).keyslot == 0
        assert vol.repair()
    assert _copy(path, 0).hdr_size == size


def test_both_copies_bad_is_an_error_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "d.img"
    format_small(path).close()
    _poke(path, 4096 + 10, b"\x02")
    _poke(path, 16384 + 4096 + 10, b"\x02")
    before = path.read_bytes()
    with pytest.raises(InvalidHeaderError, match="bad checksum"):
        Luks2Volume.open(path)
    assert path.read_bytes() == before


def test_garbage_and_truncated(tmp_path: Path) -> None:
    garbage = tmp_path / "g.img"
    garbage.write_bytes(b"\x5a" * 65536)
    with pytest.raises(NotLuks2Error, match="not a LUKS2 device"):
        Luks2Volume.open(garbage)
    path = tmp_path / "d.img"
    format_small(path).close()
    truncated = tmp_path / "t.img"
    truncated.write_bytes(path.read_bytes()[:6000])
    with pytest.raises(InvalidHeaderError, match="truncated"):
        Luks2Volume.open(truncated)
    assert truncated.read_bytes() == path.read_bytes()[:6000]
    empty = tmp_path / "e.img"
    empty.write_bytes(b"")
    with pytest.raises(InvalidHeaderError):
        Luks2Volume.open(empty)


def test_wrong_version_and_sizes_are_named(tmp_path: Path) -> None:
    path = tmp_path / "d.img"
    format_small(path).close()
    _poke(path, 6, struct.pack(">H", 1))
    _poke(path, 16384 + 8, struct.pack(">Q", 12345))
    with pytest.raises(InvalidHeaderError, match="version 1"):
        Luks2Volume.open(path)


def test_json_must_fit_its_area(tmp_path: Path) -> None:
    from volumed.storage.luks2 import InvalidMetadataError

    path = tmp_path / "d.img"
    with format_small(path) as vol:
        before = path.read_bytes()
        with pytest.raises(InvalidMetadataError, match="JSON area holds at most 12287"):
            vol.import_token({"type": "big", "keyslots": [], "blob": "x" * 13000})
        assert path.read_bytes() == before
