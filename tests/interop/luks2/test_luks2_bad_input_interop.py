"""Bad input: `volumed luks` exits like cryptsetup, says what is wrong, and leaves the file byte for byte."""

from __future__ import annotations

import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.storage.luks2._luks2_helpers import OTHER, PASS, cryptsetup, format_small, key_file
from volumed.storage.luks2.lowlevel import Region, load, write_copies

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def volumed(*args: object, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "volumed", "luks", *map(str, args)], capture_output=True, input=stdin
    )


def _raw_json(path: Path, json_area: bytes) -> None:
    """Store ``json_area`` verbatim in both copies with valid checksums (a well-formed but bad header)."""
    with open(path, "r+b") as f:
        region = Region(f)
        state = load(region)
        write_copies(region, state.binary, json_area, state.salts)


def garbage(path: Path) -> None:
    path.write_bytes(b"\xa5" * (3 << 20))


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:6000])


def bad_checksums(path: Path) -> None:
    with open(path, "r+b") as f:
        for at in (0x1C0, 16384 + 0x1C0):
            f.seek(at)
            f.write(b"\0" * 4)


def invalid_json(path: Path) -> None:
    _raw_json(path, b"{not json" + bytes(12288 - 9))


def over_long_json(path: Path) -> None:
    _raw_json(path, b"{" + b" " * (12288 - 2) + b"}")


def json_breaking_rules(path: Path) -> None:
    text = (
        path.read_bytes()[4096:16384]
        .rstrip(b"\0")
        .replace(b'"tokens":{}', b'"tokens":{"0":{"type":"x","keyslots":["9"]}}')
    )
    _raw_json(path, text + bytes(12288 - len(text)))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "garbage": garbage,
    "truncated": truncated,
    "bad-checksums": bad_checksums,
    "invalid-json": invalid_json,
    "over-long-json": over_long_json,
    "json-breaks-rules": json_breaking_rules,
}


@pytest.mark.parametrize("name", list(DAMAGE))
def test_broken_headers(tmp_path: Path, name: str) -> None:
    ours, theirs = tmp_path / "ours.img", tmp_path / "theirs.img"
    format_small(ours).close()
    DAMAGE[name](ours)
    shutil.copyfile(ours, theirs)
    before = ours.read_bytes()
    pass_file = key_file(tmp_path, PASS)

    for ours_args, their_args in (
        (["dump", ours], ["luksDump", theirs]),
        (
            ["test-key", "--key-file", pass_file, ours],
            ["open", "--test-passphrase", "--key-file", pass_file, theirs],
        ),
        (["token", "export", "--token-id", 0, ours], ["token", "export", "--token-id", 0, theirs]),
    ):
        result = volumed(*ours_args)
        expected = cryptsetup(*their_args, check=False).returncode
        assert result.returncode == expected == 1, (ours_args, result.stderr)
        assert b"is not a valid LUKS device" in result.stderr
        assert b"Traceback" not in result.stderr
    assert ours.read_bytes() == before
    assert theirs.read_bytes() == before


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    path = tmp_path / "v.img"
    format_small(path).close()
    return path


DEV = object()  # where the device goes in an argument list (the end, unless placed)


def _same_exit_unchanged(
    tmp_path: Path,
    volume: Path,
    ours: list[object],
    theirs: list[object],
    expected: int,
    stdin: bytes | None = None,
) -> bytes:
    twin = tmp_path / "twin.img"
    shutil.copyfile(volume, twin)
    before = volume.read_bytes()

    def place(args: list[object], device: Path) -> list[object]:
        return [device if a is DEV else a for a in args] if DEV in args else [*args, device]

    result = volumed(*place(ours, volume), stdin=stdin)
    their = cryptsetup(*place(theirs, twin), check=False, stdin=stdin)
    assert (result.returncode, their.returncode) == (expected, expected), (result.stderr, their.stderr)
    assert volume.read_bytes() == before
    assert b"Traceback" not in result.stderr
    return result.stderr


def test_wrong_passphrase(tmp_path: Path, volume: Path) -> None:
    wrong, right = key_file(tmp_path, OTHER), key_file(tmp_path, PASS)
    err = _same_exit_unchanged(
        tmp_path,
        volume,
        ["test-key", "--key-file", wrong],
        ["open", "--test-passphrase", "--key-file", wrong],
        2,
    )
    assert err == b"No key available with this passphrase.\n"
    _same_exit_unchanged(
        tmp_path,
        volume,
        ["volume-key", "--key-file", wrong],
        ["luksDump", "--dump-volume-key", "--batch-mode", "--key-file", wrong],
        2,
    )
    _same_exit_unchanged(
        tmp_path,
        volume,
        ["test-key", "--key-slot", 3, "--key-file", right],
        ["open", "--test-passphrase", "--key-slot", "3", "--key-file", right],
        1,  # an empty slot named explicitly: "No usable keyslot is available."
    )
    new = key_file(tmp_path, b"new")
    fast = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
    _same_exit_unchanged(
        tmp_path,
        volume,
        ["add-key", "--new-key-file", new, "--key-file", wrong, *fast],
        ["luksAddKey", "--key-file", wrong, *fast, DEV, new],
        2,
    )


def test_bad_token_requests(tmp_path: Path, volume: Path) -> None:
    err = _same_exit_unchanged(
        tmp_path, volume, ["token", "export", "--token-id", 40], ["token", "export", "--token-id", "40"], 1
    )
    assert b"out of range" in err
    _same_exit_unchanged(
        tmp_path, volume, ["token", "export", "--token-id", 5], ["token", "export", "--token-id", "5"], 1
    )
    for body, message in (
        (b'{"type":"luks2-own","keyslots":[]}', b"reserved"),
        (b'{"type":"x","keyslots":["9"]}', b"does not exist"),
        (b'{"type":"x"}', b"keyslots"),
        (b"not json", b"not valid JSON"),
    ):
        err = _same_exit_unchanged(
            tmp_path,
            volume,
            ["token", "import", "--token-id", 1],
            ["token", "import", "--token-id", "1"],
            1,
            stdin=body,
        )
        assert message in err


def test_bad_slots_and_arguments(tmp_path: Path, volume: Path) -> None:
    right, new = key_file(tmp_path, PASS), key_file(tmp_path, b"new")
    fast = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
    _same_exit_unchanged(
        tmp_path, volume, ["kill-slot", "--batch-mode", DEV, 9], ["luksKillSlot", "--batch-mode", DEV, "9"], 1
    )
    _same_exit_unchanged(
        tmp_path,
        volume,
        ["add-key", "--key-slot", 0, "--new-key-file", new, "--key-file", right, *fast],
        ["luksAddKey", "--key-slot", "0", "--key-file", right, *fast, DEV, new],
        1,
    )
    _same_exit_unchanged(tmp_path, volume, ["dump", "--no-such-option"], ["luksDump", "--no-such-option"], 1)


def test_missing_device(tmp_path: Path) -> None:
    missing = tmp_path / "missing.img"
    result = volumed("dump", missing)
    assert result.returncode == cryptsetup("luksDump", missing, check=False).returncode == 4
    assert result.stderr.startswith(f"Device {missing} does not exist or access denied".encode())


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"stripes":4000', b'"stripes":3999'),  # cryptsetup always uses 4000 stripes
        (b'"iterations":1000,"salt"', b'"iterations":1000,"x":1,"salt"'),  # unknown kdf keys are kept
    ],
)
def test_oddities_cryptsetup_tolerates_we_tolerate(tmp_path: Path, old: bytes, new: bytes) -> None:
    path = tmp_path / "odd.img"
    format_small(path).close()
    text = path.read_bytes()[4096:16384].rstrip(b"\0").replace(old, new, 1)
    _raw_json(path, text + bytes(12288 - len(text)))
    pass_file = key_file(tmp_path, PASS)
    cryptsetup("open", "--test-passphrase", "--key-file", pass_file, path)
    result = volumed("test-key", "--key-file", pass_file, path)
    assert (result.returncode, result.stdout) == (0, b"Key slot 0 unlocked.\n")
    assert volumed("dump", "--json", path).stdout == text + b"\n"
    token = tmp_path / "t.json"
    token.write_text('{"type":"x","keyslots":["0"]}')
    assert volumed("token", "import", "--json-file", token, path).returncode == 0
    assert new in path.read_bytes()[4096:16384]
    cryptsetup("open", "--test-passphrase", "--key-file", pass_file, path)
