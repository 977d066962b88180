"""A LUKS2 format killed after each of its writes (a real process exit at a fault hook, as kill -9 would) is
recognised as volumed's own interrupted format, and formatted again; a header without key slots that is not
exactly that (cryptsetup's, every slot killed) is left alone.

Before, a format stopped between its random fill of the key slot area and its header left non-zero bytes
with no signature: "unknown data", never formatted again, the volume failed forever (issue 15, item 4 and
the kill -9 test of a first boot). The crash points come from ``volumed.storage.luks2.faults``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.storage.luks2._luks2_helpers import cryptsetup, key_file
from volumed.storage.blockdev import Region
from volumed.storage.luks2 import Luks2Error, Luks2Volume, faults, interrupted_format
from volumed.storage.luks2.lowlevel import Region as Luks2Region
from volumed.storage.probe import (
    BlkidReport,
    ContentKind,
    RegionContent,
    Signature,
    SignatureType,
    examine_region,
)

VOLUMED = str(Path(sys.executable).with_name("volumed"))
PASS = b"format passphrase"
FAST = ("--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000")
MIB = 1 << 20
OFFSET, SIZE = 2 * MIB, 40 * MIB  # a partition inside a larger image, as the formatter sees one
MAX_WRITES = 32


def image(path: Path) -> Path:
    with path.open("wb") as f:
        f.truncate(OFFSET + SIZE + 2 * MIB)
        f.seek(0)
        f.write(b"\xa5" * OFFSET)  # bytes before and after the partition that no write may touch
        f.seek(OFFSET + SIZE)
        f.write(b"\x5a" * 2 * MIB)
    return path


def outside(path: Path) -> bytes:
    data = path.read_bytes()
    return data[:OFFSET] + data[OFFSET + SIZE :]


def format_cli(path: Path, passphrase: Path, crash_after: int | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop(faults.ENV, None)
    if crash_after is not None:
        env[faults.ENV] = f"format:{crash_after}"
    return subprocess.run(
        [VOLUMED, "luks", "format", "--batch-mode", "--key-file", str(passphrase), *FAST,
         "--volume-offset", str(OFFSET), "--volume-size", str(SIZE), str(path)],
        env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def partition(path: Path) -> Region:
    return Region(path, OFFSET, SIZE)


def pending_uuid(path: Path) -> str | None:
    with path.open("rb") as f:
        return interrupted_format(Luks2Region(f, offset=OFFSET, size=SIZE, writable=False))


def opens(path: Path, passphrase: Path) -> bool:
    with Luks2Volume.open(path, offset=OFFSET, size=SIZE, read_only=True) as volume:
        try:
            volume.unlock(passphrase.read_bytes())
        except Luks2Error:  # NoKeyError, or a header it cannot use
            return False
        return True


def cryptsetup_dump(path: Path) -> subprocess.CompletedProcess[str]:
    """cryptsetup's view of the partition (a copy: cryptsetup takes no offset for a LUKS2 header)."""
    copy = path.with_suffix(".part")
    with path.open("rb") as src, copy.open("wb") as dst:
        src.seek(OFFSET)
        dst.write(src.read(SIZE))
    try:
        return cryptsetup("luksDump", copy, check=False)
    finally:
        copy.unlink()


def test_format_killed_at_every_write_is_recognised_and_formatted_again(tmp_path: Path) -> None:
    key = key_file(tmp_path, PASS)
    path = tmp_path / "disk.img"
    kinds: list[str] = []
    for n in range(1, MAX_WRITES + 1):
        image(path)
        around = outside(path)
        result = format_cli(path, key, n)
        if result.returncode == 0:  # the format ended before write n: every write was a crash point
            assert f"{faults.ENV}: format ended after {n - 1} writes" in result.stderr, result.stderr
            assert kinds[-1] == "luks"
            break
        assert result.returncode == faults.EXIT_CODE, result.stderr
        assert outside(path) == around
        content = examine_region(partition(path))
        kinds.append(content.kind.value)
        if content.kind is ContentKind.LUKS:  # the final primary header is complete: the key opens it
            assert pending_uuid(path) is None
            assert opens(path, key), f"killed after write {n}: the final header does not open"
        else:
            assert content.kind in (ContentKind.BLANK, ContentKind.INTERRUPTED_FORMAT), (n, content)
            if content.kind is ContentKind.INTERRUPTED_FORMAT:
                assert content.format_pending == pending_uuid(path) is not None
                dump = cryptsetup_dump(path)  # cryptsetup reads the pending header without complaint
                assert dump.returncode == 0, dump.stderr
                assert "volumed-format-pending" in dump.stdout
                assert "Keyslots:\nTokens:" in dump.stdout  # no key slot
            again = format_cli(path, key, None)  # what the formatter does with either: format it
            assert again.returncode == 0, again.stderr
            assert examine_region(partition(path)).kind is ContentKind.LUKS
            assert opens(path, key)
            assert outside(path) == around
    else:
        raise AssertionError(f"the format did not finish within {MAX_WRITES} writes")
    # zeros over both header areas, two pending copies, then fill and slot area, then the final header
    assert kinds[0] == "blank"
    assert kinds[1:3] == ["interrupted-format"] * 2
    # the final header: primary (checksum-less binary header, JSON, checksum), then the secondary's 3 writes
    assert kinds[-6:] == ["interrupted-format"] * 2 + ["luks"] * 4
    assert set(kinds[1:-4]) == {"interrupted-format"}
    print(f"kinds after a kill at write 1..{len(kinds)}: {kinds}")


def killed_slots_header(tmp_path: Path) -> Path:
    """cryptsetup's own volume with every key slot killed: no key slot, no token — not ours to format."""
    key = key_file(tmp_path, PASS)
    path = image(tmp_path / "killed.img")
    part = tmp_path / "killed.part"
    with part.open("wb") as f:
        f.truncate(SIZE)
    cryptsetup("luksFormat", "-q", "--type", "luks2", *FAST, part, key)
    cryptsetup("luksKillSlot", "-q", part, "0")
    with part.open("rb") as src, path.open("r+b") as dst:
        dst.seek(OFFSET)
        dst.write(src.read())
    return path


def test_a_header_with_every_slot_killed_is_not_an_interrupted_format(tmp_path: Path) -> None:
    path = killed_slots_header(tmp_path)
    with Luks2Volume.open(path, offset=OFFSET, size=SIZE, read_only=True) as volume:
        assert not volume.keyslots
    assert pending_uuid(path) is None
    assert examine_region(partition(path)).kind is ContentKind.LUKS


def test_a_pending_header_changed_by_anyone_is_no_longer_ours(tmp_path: Path) -> None:
    """A token imported by cryptsetup into an interrupted format: the header moved on (seqid 3)."""
    key = key_file(tmp_path, PASS)
    path = image(tmp_path / "disk.img")
    assert format_cli(path, key, 3).returncode == faults.EXIT_CODE  # both pending copies written
    assert pending_uuid(path) is not None
    part = tmp_path / "disk.part"
    with path.open("rb") as src, part.open("wb") as dst:
        src.seek(OFFSET)
        dst.write(src.read(SIZE))
    token = tmp_path / "token.json"
    token.write_text(json.dumps({"type": "user-token", "keyslots": []}))
    cryptsetup("token", "import", "--json-file", token, part)
    with part.open("rb") as src, path.open("r+b") as dst:
        dst.seek(OFFSET)
        dst.write(src.read())
    assert pending_uuid(path) is None
    assert examine_region(partition(path)).kind is ContentKind.LUKS


@pytest.mark.parametrize(
    ("blkid", "kind"),
    [
        (BlkidReport(("crypto_LUKS",)), ContentKind.INTERRUPTED_FORMAT),
        (BlkidReport(("crypto_LUKS", "minix")), ContentKind.OTHER),
        (BlkidReport(("crypto_LUKS",), ambivalent=True), ContentKind.OTHER),
    ],
)
def test_an_interrupted_format_is_blank_only_with_nothing_beside_it(
    blkid: BlkidReport, kind: ContentKind
) -> None:
    luks = Signature(SignatureType.LUKS, ((0, 6), (0x4000, 6)), version="2")
    content = RegionContent("/dev/x", signatures=(luks,), blkid=blkid, zeroed=False, format_pending="u")
    assert content.kind is kind
