"""Header copies that cannot be trusted: two valid copies of two volumes, and a JSON area nested too deep.

A foreign LUKS2 secondary copy (another volume's UUID, a higher seqid) over a valid primary was taken as the
header (cryptsetup's rule: the higher seqid wins): volumed opened, and mkfs'd, the wrong volume, and
``volumed luks repair`` copied the foreign header over the valid primary. A token nested thousands deep (with
valid checksums) made every luks command end in a RecursionError traceback.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from tests.storage.luks2._luks2_helpers import PASS, PBKDF2_FAST, cryptsetup, format_small, image, key_file
from volumed.cli import volumed
from volumed.storage.luks2 import InvalidHeaderError, Luks2Volume
from volumed.storage.luks2._device import Region
from volumed.storage.luks2._header_io import load, write_copies

if TYPE_CHECKING:
    from pathlib import Path

HDR = 16384


def _uuid(path: Path, at: int) -> str:
    with open(path, "rb") as f:
        f.seek(at + 168)
        return f.read(36).decode()


@pytest.fixture
def foreign_secondary(tmp_path: Path) -> Path:
    """Our volume A whose secondary copy is that of a cryptsetup volume B (same passphrase, higher seqid)."""
    a = image(tmp_path / "a.img", 20 << 20)  # big enough for B's layout (data at 16 MiB) too
    format_small(a).close()
    b = image(tmp_path / "b.img", 20 << 20)
    key = key_file(tmp_path, PASS)
    cryptsetup(
        "luksFormat",
        "-q",
        "--type",
        "luks2",
        "--pbkdf",
        "pbkdf2",
        "--pbkdf-force-iterations",
        "1000",
        "--key-file",
        key,
        b,
    )
    for _ in range(3):
        cryptsetup(
            "luksAddKey",
            "-q",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--key-file",
            key,
            b,
            key,
        )
    with open(b, "rb") as src, open(a, "r+b") as dst:
        src.seek(HDR)
        dst.seek(HDR)
        dst.write(src.read(HDR))
    return a


def test_foreign_secondary_is_ambiguous(foreign_secondary: Path) -> None:
    a = foreign_secondary
    mine, theirs = _uuid(a, 0), _uuid(a, HDR)
    assert mine != theirs
    # cryptsetup takes the foreign copy (higher seqid); we refuse, naming both volumes
    copy = a.with_name("copy.img")  # cryptsetup rewrites the "stale" primary when it reads: on a copy
    shutil.copyfile(a, copy)
    assert theirs in cryptsetup("luksUUID", copy).stdout
    with pytest.raises(InvalidHeaderError, match="ambiguous") as info:
        Luks2Volume.open(a, read_only=True)
    assert mine in str(info.value)
    assert theirs in str(info.value)


def test_repair_refuses_foreign_secondary(foreign_secondary: Path) -> None:
    a = foreign_secondary
    before = a.read_bytes()
    result = CliRunner().invoke(volumed, ["luks", "repair", str(a)], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "ambiguous" in result.output
    assert _uuid(a, 0) in result.output
    assert a.read_bytes() == before


def _deep_token(path: Path, depth: int) -> None:
    """Both copies get a token nested ``depth`` deep, with valid checksums (written as text: json.dumps of
    such a document recurses too)."""
    with open(path, "r+b") as f:
        region = Region(f)
        state = load(region)
        top = json.loads(state.json_text)
        top["tokens"] = {}
        text = json.dumps(top, separators=(",", ":"))
        deep = '{"type":"x","keyslots":[],"d":' + "[" * depth + "]" * depth + "}"
        raw = text.replace('"tokens":{}', '"tokens":{"0":' + deep + "}").encode()
        size = state.binary.json_size
        write_copies(region, state.binary, raw + bytes(size - len(raw)), state.salts)


@pytest.mark.parametrize("depth", [2000, 5000])
def test_deeply_nested_token_is_an_invalid_header(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.img"
    format_small(path, kdf=PBKDF2_FAST).close()
    _deep_token(path, depth)
    assert cryptsetup("luksDump", path, check=False).returncode != 0  # cryptsetup refuses it too
    with pytest.raises(InvalidHeaderError, match="nested too deep"):
        Luks2Volume.open(path, read_only=True)
    for args in (["dump"], ["repair"]):
        result = CliRunner().invoke(volumed, ["luks", *args, str(path)], catch_exceptions=False)
        assert result.exit_code == 1, result.output
        assert "nested too deep" in result.output


def test_shallow_token_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "ok.img"
    format_small(path).close()
    _deep_token(path, 20)
    with Luks2Volume.open(path, read_only=True) as volume:
        assert volume.tokens[0].type == "x"
