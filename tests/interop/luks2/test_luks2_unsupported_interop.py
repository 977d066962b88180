"""Volumes cryptsetup makes with a hash or cipher volumed does not implement: `volumed luks test-key` says
which slot and why (exit 1), not "No key available with this passphrase" (exit 2) as for a wrong passphrase,
which the passphrase was not (review40 cross2.sh: whirlpool, ripemd160, sha3-256, blake2b-512, sm3,
aes-cbc-essiv:sha256 all said so). sha3-*, blake2b-512, blake2s-256 and sm3 are implemented now: the same
volume key as cryptsetup's, both ways."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.storage.luks2._luks2_helpers import (
    MIB,
    OTHER,
    PASS,
    cryptsetup,
    cryptsetup_volume_key,
    image,
    key_file,
)

if TYPE_CHECKING:
    from pathlib import Path

FAST = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]

CASES = {
    "whirlpool": (["--hash", "whirlpool"], "pbkdf2 hash 'whirlpool' is not supported by volumed"),
    "ripemd160": (["--hash", "ripemd160"], "pbkdf2 hash 'ripemd160' is not supported by volumed"),
    "payload-essiv": (
        ["-c", "aes-cbc-essiv:sha256", "-s", "256"],
        "unsupported cipher 'aes-cbc-essiv:sha256'",
    ),
    "keyslot-essiv": (
        ["--keyslot-cipher", "aes-cbc-essiv:sha256", "--keyslot-key-size", "256"],
        "unsupported cipher 'aes-cbc-essiv:sha256'",
    ),
}


def volumed(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "volumed", "luks", *map(str, args)], capture_output=True, text=True
    )


@pytest.mark.parametrize("name", CASES)
def test_an_unsupported_hash_or_cipher_is_named_not_a_wrong_passphrase(tmp_path: Path, name: str) -> None:
    args, reason = CASES[name]
    path = image(tmp_path / "v.img", 24 * MIB)
    right, wrong = key_file(tmp_path, PASS), key_file(tmp_path, OTHER)
    cryptsetup("luksFormat", "-q", "--type", "luks2", *FAST, *args, "--key-file", right, path)
    before = path.read_bytes()
    for slot in ([], ["-S", "0"]):
        for key in (right, wrong):  # no KDF runs: the same answer, whatever the passphrase
            result = volumed("test-key", "-d", key, *slot, path)
            assert result.returncode == 1, (slot, result.stderr)
            assert "No key available" not in result.stderr
            assert "keyslot 0: " in result.stderr, result.stderr
            assert reason in result.stderr, result.stderr
            assert "supported: " in result.stderr, result.stderr
            assert PASS.decode() not in result.stderr
            assert OTHER.decode() not in result.stderr
    assert path.read_bytes() == before


def test_a_wrong_passphrase_on_a_supported_header_is_still_no_key(tmp_path: Path) -> None:
    path = image(tmp_path / "v.img", 24 * MIB)
    right, wrong = key_file(tmp_path, PASS), key_file(tmp_path, OTHER)
    cryptsetup("luksFormat", "-q", "--type", "luks2", *FAST, "--hash", "sha512", "--key-file", right, path)
    result = volumed("test-key", "-d", wrong, path)
    assert (result.returncode, result.stderr) == (2, "No key available with this passphrase.\n")
    assert volumed("test-key", "-d", right, path).returncode == 0


def test_an_unsupported_payload_cipher_is_named_where_the_payload_is_needed(tmp_path: Path) -> None:
    """The slots are usable (test-key opens them, as cryptsetup does), the data segment's cipher is not:
    `volumed luks read` says so instead of a traceback."""
    path = image(tmp_path / "v.img", 24 * MIB)
    right = key_file(tmp_path, PASS)
    essiv = ["-c", "aes-cbc-essiv:sha256", "-s", "256", "--keyslot-cipher", "aes-xts-plain64"]
    cryptsetup(
        "luksFormat",
        "-q",
        "--type",
        "luks2",
        *FAST,
        *essiv,
        "--keyslot-key-size",
        "512",
        "--key-file",
        right,
        path,
    )
    assert volumed("test-key", "-d", right, path).returncode == 0
    before = path.read_bytes()
    result = volumed("read", "-d", right, path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "unsupported payload cipher 'aes-cbc-essiv:sha256'" in result.stderr, result.stderr
    assert "supported by volumed: aes-xts-plain64" in result.stderr
    assert result.stdout == ""
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "hash_name", ["sha3-224", "sha3-256", "sha3-384", "sha3-512", "blake2b-512", "blake2s-256", "sm3"]
)
def test_hashes_cryptsetup_uses_beyond_sha2_open_both_ways(tmp_path: Path, hash_name: str) -> None:
    path = image(tmp_path / "v.img", 24 * MIB)
    right, other = key_file(tmp_path, PASS), key_file(tmp_path, OTHER)
    cryptsetup("luksFormat", "-q", "--type", "luks2", *FAST, "--hash", hash_name, "--key-file", right, path)
    assert volumed("test-key", "-d", right, path).returncode == 0
    ours = volumed("volume-key", "-d", right, path)
    assert ours.returncode == 0, ours.stderr
    assert bytes.fromhex(ours.stdout.strip()) == cryptsetup_volume_key(path, right)
    wrong = volumed("test-key", "-d", other, path)
    assert (wrong.returncode, wrong.stderr) == (2, "No key available with this passphrase.\n")
    added = volumed("add-key", "-d", right, "--new-key-file", other, *FAST, "--hash", hash_name, path)
    assert added.returncode == 0, added.stderr
    assert hash_name in cryptsetup("luksDump", path).stdout
    cryptsetup("open", "--test-passphrase", "--key-slot", "1", "--key-file", other, path)
