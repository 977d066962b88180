"""Damaged headers (one corrupt copy, one stale copy): we and cryptsetup recover them alike."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest

from tests.storage.luks2._luks2_helpers import PASS, PBKDF2_FAST, cryptsetup, format_small, key_file
from volumed.storage.luks2 import Luks2Volume
from volumed.storage.luks2.lowlevel import BinaryHeader, Region, read_copy

if TYPE_CHECKING:
    from pathlib import Path

HDR = 16384


def _poke(path: Path, at: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(data)


def _make(tmp_path: Path, maker: str) -> Path:
    path = tmp_path / "base.img"
    if maker == "ours":
        format_small(path).close()
    else:
        format_small(path).close()  # same size and layout, then cryptsetup re-formats it
        cryptsetup(
            "luksFormat",
            "--batch-mode",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--luks2-keyslots-size",
            "1048576",
            "--key-file",
            key_file(tmp_path, PASS),
            path,
        )
    return path


def _damage(path: Path, how: str, tmp_path: Path) -> None:
    if how == "corrupt-primary":
        _poke(path, 4096 + 50, b"\x07")
    elif how == "corrupt-secondary":
        _poke(path, HDR + 4096 + 50, b"\x07")
    else:
        stale_at = 0 if how == "stale-primary" else HDR
        old = path.read_bytes()[stale_at : stale_at + HDR]
        cryptsetup("config", "--label", "changed", path)
        _poke(path, stale_at, old)


def _copies(path: Path) -> tuple[BinaryHeader, BinaryHeader, bytes]:
    with open(path, "rb") as f:
        region = Region(f)
        primary, secondary = read_copy(region, 0), read_copy(region, HDR)
    assert primary.json_text == secondary.json_text
    return primary.binary, secondary.binary, primary.json_text


@pytest.mark.parametrize("maker", ["ours", "cryptsetup"])
@pytest.mark.parametrize("how", ["corrupt-primary", "corrupt-secondary", "stale-primary", "stale-secondary"])
def test_we_and_cryptsetup_recover_alike(tmp_path: Path, maker: str, how: str) -> None:
    base = _make(tmp_path, maker)
    _damage(base, how, tmp_path)
    ours, theirs = tmp_path / "ours.img", tmp_path / "theirs.img"
    shutil.copyfile(base, ours)
    shutil.copyfile(base, theirs)

    with Luks2Volume.open(ours) as vol:
        assert vol.unlock(PASS).keyslot == 0
        assert vol.repair()  # we repair only when asked (or by a change); opening never writes
    cryptsetup("luksDump", theirs)  # cryptsetup repairs while dumping

    p_ours, s_ours, json_ours = _copies(ours)
    p_theirs, s_theirs, json_theirs = _copies(theirs)
    assert json_ours == json_theirs
    assert (p_ours.seqid, s_ours.seqid) == (p_theirs.seqid, s_theirs.seqid)
    assert p_ours.seqid == s_ours.seqid
    assert p_ours.salt != s_ours.salt
    expect_label = "changed" if how.startswith("stale") else ""
    assert p_ours.label == s_ours.label == p_theirs.label == expect_label
    # each side accepts the other's repair
    pass_file = key_file(tmp_path, PASS)
    cryptsetup("open", "--test-passphrase", "--key-file", pass_file, ours)
    with Luks2Volume.open(theirs, read_only=True) as vol:
        assert vol.unlock(PASS).keyslot == 0
        assert vol.metadata.keyslots.keys() == {0}


def test_repair_then_update_keeps_both_copies_in_step(tmp_path: Path) -> None:
    base = _make(tmp_path, "cryptsetup")
    _damage(base, "corrupt-secondary", tmp_path)
    with Luks2Volume.open(base) as vol:
        vol.add_key(b"more", passphrase=PASS, kdf=PBKDF2_FAST)
    primary, secondary, _ = _copies(base)
    assert primary.seqid == secondary.seqid == 4
    cryptsetup("open", "--test-passphrase", "--key-file", key_file(tmp_path, b"more"), base)


def test_reencryption_in_progress_is_read_only_for_us(tmp_path: Path) -> None:
    """cryptsetup marks a header with the mandatory requirement online-reencrypt-v2: we read, never write."""
    from volumed.storage.luks2 import ReadOnlyError

    path = tmp_path / "r.img"
    with open(path, "wb") as f:
        f.truncate(20 << 20)
    pass_file = key_file(tmp_path, PASS)
    fast = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
    cryptsetup("luksFormat", "--batch-mode", *fast, "--key-file", pass_file, path)
    cryptsetup("reencrypt", "--init-only", "--batch-mode", *fast, "--key-file", pass_file, path)
    before = path.read_bytes()
    with Luks2Volume.open(path) as vol:
        assert vol.read_only_reason == "unsupported mandatory requirements: online-reencrypt-v2"
        assert vol.unlock(PASS).keyslot == 0
        assert vol.metadata.to_json().decode() == vol.json_text
        with pytest.raises(ReadOnlyError, match="online-reencrypt-v2"):
            vol.add_key(b"x", passphrase=PASS, kdf=PBKDF2_FAST)
        with pytest.raises(ReadOnlyError, match="online-reencrypt-v2"):
            vol.kill_slot(0)
    assert path.read_bytes() == before
