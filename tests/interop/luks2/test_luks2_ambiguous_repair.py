"""A LUKS2 header copy is repaired only where it is safe, never by a read (issue 15, item 1).

The ext4 with a stale LUKS2 secondary header in it (the issue's repro): every `volumed luks` read leaves it
byte for byte, and every write and `volumed luks repair` refuse it, as cryptsetup's auto-recovery does
("Device contains ambiguous signatures"). A header whose primary copy is really damaged (zeroed) and nothing
else on the device is repaired by `volumed luks repair` and by a key change; cryptsetup then opens it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

from tests._tools import require_tool
from tests.storage.luks2._luks2_helpers import cryptsetup, key_file
from tests.storage.probe._contents import (
    MIB,
    PASS,
    ext4_file,
    ext4_is_clean,
    write_ext4_with_stale_secondary,
)

VOLUMED: Final = str(Path(sys.executable).parent / "volumed")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _volumed(*args: object, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VOLUMED, "luks", *map(str, args)],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


@pytest.fixture
def ambiguous(tmp_path: Path) -> tuple[Path, bytes]:
    """ext4 + a stale LUKS2 secondary at 4 MiB; wipefs sees both. Returns the image and the ext4's file."""
    image = tmp_path / "ambiguous.img"
    with image.open("wb") as f:
        f.truncate(64 * MIB)
    payload = write_ext4_with_stale_secondary(image, 0, tmp_path)
    listed = subprocess.run(
        [require_tool("wipefs"), "--no-act", "--output", "TYPE", "--noheadings", image],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert sorted(listed) == ["crypto_LUKS", "ext4"]
    assert ext4_is_clean(image)
    return image, payload


def _args(command: str, tmp_path: Path) -> list[object]:
    keys = key_file(tmp_path, PASS)
    token = tmp_path / "token.json"
    token.write_text('{"type":"x-test","keyslots":[]}')
    return {
        "dump": ["dump"],
        "dump-json": ["dump", "--json"],
        "test-key": ["test-key", "--key-file", keys],
        "volume-key": ["volume-key", "--key-file", keys],
        "token-export": ["token", "export", "--token-id", "0"],
        "add-key": ["add-key", "--key-file", keys, "--new-key-file", keys, "--pbkdf", "pbkdf2",
                    "--pbkdf-force-iterations", "1000"],
        "change-key": ["change-key", "--key-file", keys, "--new-key-file", keys, "--pbkdf", "pbkdf2",
                       "--pbkdf-force-iterations", "1000"],
        "kill-slot": ["kill-slot", "0"],
        "token-import": ["token", "import", "--json-file", token],
        "config-label": ["config", "--label", "x"],
        "repair": ["repair"],
    }[command]  # fmt: skip


READS: Final = ("dump", "dump-json", "test-key", "volume-key", "token-export")
WRITES: Final = ("add-key", "change-key", "kill-slot", "token-import", "config-label", "repair")


@pytest.mark.parametrize("command", READS + WRITES)
def test_nothing_writes_over_an_ext4_with_a_stale_secondary_header(
    ambiguous: tuple[Path, bytes], tmp_path: Path, command: str
) -> None:
    """Before the fix `luks dump` (and every other command) wrote a new primary header at offset 0."""
    image, payload = ambiguous
    before = _digest(image)
    args = _args(command, tmp_path)
    result = (
        _volumed(args[0], image, *args[1:]) if args[0] != "token" else _volumed(*args[:2], image, *args[2:])
    )
    assert _digest(image) == before, f"{command} wrote to the device: {result.stderr}"
    assert ext4_file(image, tmp_path) == payload
    assert ext4_is_clean(image)
    if command in WRITES:
        assert result.returncode == 1, result.stderr
        assert "ambiguous signatures (LUKS2 and ext4)" in result.stderr
        assert "nothing was written" in result.stderr
    elif command.startswith("dump"):
        assert result.returncode == 0, result.stderr
        assert "primary header is invalid" in result.stderr  # the shown header is the stale secondary


def test_cryptsetup_also_refuses_to_recover_it(ambiguous: tuple[Path, bytes], tmp_path: Path) -> None:
    """The rule we follow: cryptsetup's auto-recovery (any command that loads the header) refuses it, and
    writes nothing. Its explicit `repair` only warns ("already contains a 'ext4' superblock signature")
    and rewrites the primary over the ext4; `volumed luks repair` refuses there too (docs/operations.md)."""
    image, _ = ambiguous
    theirs = tmp_path / "theirs.img"
    shutil.copyfile(image, theirs)
    before = _digest(theirs)
    dumped = cryptsetup("luksDump", theirs, check=False)
    assert dumped.returncode == 1
    assert "ambiguous signatures" in dumped.stderr
    assert _digest(theirs) == before
    ours = _volumed("repair", image)
    assert (ours.returncode, _digest(image)) == (1, before)
    forced = cryptsetup("repair", "--batch-mode", theirs, check=False)
    assert forced.returncode == 0
    assert _digest(theirs) != before  # cryptsetup repair destroys the ext4: we do not copy that


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    """A cryptsetup LUKS2 volume whose primary binary header was zeroed: only the secondary is valid."""
    image = tmp_path / "damaged.img"
    with image.open("wb") as f:
        f.truncate(32 * MIB)
    cryptsetup(
        "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations",
        "1000", "--key-file", key_file(tmp_path, PASS), image,
    )  # fmt: skip
    with image.open("r+b") as f:
        f.write(bytes(4096))
    assert (
        cryptsetup("open", "--test-passphrase", "--key-file", key_file(tmp_path, PASS), image).returncode == 0
    )
    with image.open("r+b") as f:  # cryptsetup repaired it while opening: damage it again
        f.write(bytes(4096))
    return image


def _primary_is_valid(image: Path) -> bool:
    return image.read_bytes()[:6] == b"LUKS\xba\xbe"


def test_a_damaged_primary_is_only_read_by_reads(damaged: Path, tmp_path: Path) -> None:
    before = _digest(damaged)
    for command in READS:
        args = _args(command, tmp_path)
        _volumed(args[0], damaged, *args[1:]) if args[0] != "token" else _volumed(
            *args[:2], damaged, *args[2:]
        )
        assert _digest(damaged) == before, command
    assert _volumed("test-key", damaged, "--key-file", key_file(tmp_path, PASS)).returncode == 0


def test_luks_repair_rewrites_a_damaged_primary_as_cryptsetup_repair_does(
    damaged: Path, tmp_path: Path
) -> None:
    theirs = tmp_path / "theirs.img"
    shutil.copyfile(damaged, theirs)
    result = _volumed("repair", damaged)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "LUKS2 header repaired (primary header is invalid).\n"
    assert _primary_is_valid(damaged)
    assert cryptsetup("repair", "--batch-mode", theirs).returncode == 0
    assert _primary_is_valid(theirs)
    # cryptsetup reads our repair without needing one of its own, and opens it
    before = _digest(damaged)
    cryptsetup("open", "--test-passphrase", "--key-file", key_file(tmp_path, PASS), damaged)
    assert _digest(damaged) == before
    again = _volumed("repair", damaged)
    assert (again.returncode, again.stdout) == (0, "No known problems detected for LUKS header.\n")


def test_a_key_change_repairs_a_damaged_primary(damaged: Path, tmp_path: Path) -> None:
    new = b"new secret"
    result = _volumed(
        "add-key", damaged, "--key-file", key_file(tmp_path, PASS), "--new-key-file", key_file(tmp_path, new),
        "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _primary_is_valid(damaged)
    before = _digest(damaged)
    for secret in (PASS, new):
        cryptsetup("open", "--test-passphrase", "--key-file", key_file(tmp_path, secret), damaged)
    assert _digest(damaged) == before  # nothing left for cryptsetup to repair


def test_garbage_over_the_primary_is_not_repaired(damaged: Path, tmp_path: Path) -> None:
    """Beyond cryptsetup (which repairs it): a primary area that is neither a LUKS header nor zeros is data
    of a format nobody recognises; `volumed luks repair` leaves it."""
    with damaged.open("r+b") as f:
        f.write(b"\x5a" * 4096)
    before = _digest(damaged)
    result = _volumed("repair", damaged)
    assert result.returncode == 1
    assert "neither a LUKS header nor blank" in result.stderr
    assert _digest(damaged) == before


def test_repair_exit_codes_follow_cryptsetup(tmp_path: Path) -> None:
    missing = _volumed("repair", tmp_path / "missing.img")
    assert missing.returncode == 4
    blank = tmp_path / "blank.img"
    with blank.open("wb") as f:
        f.truncate(MIB)
    not_luks = _volumed("repair", blank)
    assert (not_luks.returncode, not_luks.stderr) == (1, f"Device {blank} is not a valid LUKS device.\n")
    theirs = cryptsetup("repair", "--batch-mode", blank, check=False)
    assert theirs.returncode == not_luks.returncode
