"""`volumed luks change-key` killed after each of its writes (a real process exit at a fault hook, as kill -9
would): cryptsetup must open the volume with the old or the new passphrase afterwards, whatever the write.

The volume is made by cryptsetup (independent side); the crash points come from
``volumed.storage.luks2.faults``. A key slot area with no room for the new material is refused with the old
key kept (cryptsetup 2.6.1 overwrites the slot in place there).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.storage.luks2._luks2_helpers import cryptsetup, key_file
from volumed.storage.luks2 import faults

VOLUMED = str(Path(sys.executable).with_name("volumed"))
OLD = b"old passphrase"
NEW = b"new passphrase"
FAST = ("--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000")
MAX_WRITES = 32


def luks_image(path: Path, passphrase: Path, *extra: str) -> Path:
    with path.open("wb") as f:
        f.truncate(20 << 20)
    cryptsetup("luksFormat", "-q", "--type", "luks2", *FAST, *extra, path, passphrase)
    return path


def opens(image: Path, passphrase: Path) -> bool:
    result = cryptsetup(
        "open", "--test-passphrase", "--key-slot", "0", "--key-file", passphrase, image, check=False
    )
    assert result.returncode in (0, 1, 2), result.stderr
    return result.returncode == 0


def change_key(
    image: Path, old: Path, new: Path, crash_after: int | None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop(faults.ENV, None)
    if crash_after is not None:
        env[faults.ENV] = f"key-change:{crash_after}"
    return subprocess.run(
        [VOLUMED, "luks", "change-key", str(image), "--key-file", str(old), "--new-key-file", str(new),
         *FAST],
        env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_change_key_killed_at_every_write_keeps_the_old_or_the_new_key(tmp_path: Path) -> None:
    old, new = key_file(tmp_path, OLD), key_file(tmp_path, NEW)
    base = luks_image(tmp_path / "base.img", old)
    work = tmp_path / "work.img"
    outcomes: list[str] = []
    for n in range(1, MAX_WRITES + 1):
        shutil.copyfile(base, work)
        result = change_key(work, old, new, n)
        if result.returncode == 0:
            assert f"key-change ended after {n - 1} writes" in result.stderr, result.stderr
            break
        assert result.returncode == faults.EXIT_CODE, result.stderr
        working = [name for name, key in (("old", old), ("new", new)) if opens(work, key)]
        assert working, f"killed after write {n} of change-key: neither passphrase opens slot 0"
        outcomes.append("+".join(working))
    else:
        raise AssertionError(f"change-key did not finish within {MAX_WRITES} writes")
    # area, 2 header copies x 3 writes, wipe of the old area: the crash points were armed and both sides seen
    assert len(outcomes) == 8, outcomes
    assert (outcomes[0], outcomes[-1]) == ("old", "new"), outcomes
    assert opens(work, new)
    assert not opens(work, old)


def test_change_key_without_room_for_the_new_material_keeps_the_old_key(tmp_path: Path) -> None:
    old, new = key_file(tmp_path, OLD), key_file(tmp_path, NEW)
    image = luks_image(tmp_path / "full.img", old, "--luks2-keyslots-size", "256k")  # room for one area
    before = image.read_bytes()
    result = change_key(image, old, new, None)
    assert result.returncode == 1
    assert "key slot 0 keeps its old key: no gap of 258048 bytes left in the key slot area" in result.stderr
    assert image.read_bytes() == before  # nothing written
    assert opens(image, old)
    assert not opens(image, new)
