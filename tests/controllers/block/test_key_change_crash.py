"""A key change through key-slot sync, stopped after each of its writes (kill -9 at every write): the old or
the new key must open the volume afterwards, as cryptsetup sees it.

Key-slot sync used to kill the slot, run the KDF, then add it again: a crash in between left a volume that
no key opens (issue 15, item 2). The crash points come from ``volumed.storage.luks2.faults``, not sleeps.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tests._tools import require_tool
from volumed.controllers.block._encryption import Location, SlotKey, format_encrypted
from volumed.keys import StaticKeyProvider
from volumed.keys.testing import FAKE_TOKEN_TYPE
from volumed.resources import EncryptionConfigSpec, PbkdfSpec
from volumed.storage.luks2 import faults

CHILD = Path(__file__).with_name("_key_change_child.py")
ENC = EncryptionConfigSpec(pbkdf=PbkdfSpec(type="pbkdf2", iterations=1000), key_size_bits=256)
OLD = b"old passphrase"
NEW = b"new passphrase"
RECOVERY = b"recovery passphrase"
MAX_WRITES = 64


def cryptsetup_opens(image: Path, passphrase: bytes, slot: int) -> bool:
    result = subprocess.run(
        [require_tool("cryptsetup"), "open", "--test-passphrase", "--key-slot", str(slot),
         "--key-file", "-", str(image)],
        input=passphrase, capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode in (0, 1, 2), result.stderr.decode(errors="replace")
    return result.returncode == 0


def sealed_passphrase(image: Path, token_id: int) -> bytes | None:
    """The passphrase a fake sealed (kms-like) token at ``token_id`` unseals to, as cryptsetup exports it."""
    result = subprocess.run(
        [require_tool("cryptsetup"), "token", "export", "--token-id", str(token_id), str(image)],
        capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    if result.returncode != 0:
        return None
    token = json.loads(result.stdout)
    if token.get("type") != FAKE_TOKEN_TYPE:
        return None
    return base64.b64encode(base64.b64decode(token["UserData"]["key"]))


def working_keys(image: Path, scenario: str) -> list[str]:
    """Which keys of slot 0 open the volume now: the old one, the new one (static or through its token)."""
    working = []
    if cryptsetup_opens(image, OLD, 0):
        working.append("old")
    new = sealed_passphrase(image, 0) if scenario == "static-to-kms" else NEW
    if new is not None and cryptsetup_opens(image, new, 0):
        working.append("new")
    return working


def base_image(tmp_path: Path, scenario: str) -> Path:
    path = tmp_path / "base.img"
    with path.open("wb") as f:
        f.truncate(32 * 1024 * 1024)
    keys = [SlotKey(0, "static", StaticKeyProvider(slot=0, passphrase=OLD))]
    if scenario == "two-slots":
        keys.append(SlotKey(1, "static", StaticKeyProvider(slot=1, passphrase=RECOVERY)))
    anyio.run(format_encrypted, Location(str(path)), ENC, keys)
    return path


def run_child(image: Path, scenario: str, crash_after: int) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **{faults.ENV: f"key-slot-sync:{crash_after}"})
    return subprocess.run(
        [sys.executable, str(CHILD), str(image), scenario],
        env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("scenario", ["static", "static-to-kms", "two-slots"])
def test_a_key_change_killed_at_every_write_keeps_a_working_key(tmp_path: Path, scenario: str) -> None:
    base = base_image(tmp_path, scenario)
    work = tmp_path / "work.img"
    crashes = 0
    for n in range(1, MAX_WRITES + 1):
        shutil.copyfile(base, work)
        result = run_child(work, scenario, n)
        if result.returncode == 0:
            assert f"key-slot-sync ended after {n - 1} writes" in result.stderr, result.stderr
            break
        assert result.returncode == faults.EXIT_CODE, result.stderr
        crashes += 1
        working = working_keys(work, scenario)
        assert working, f"{scenario}: killed after write {n} of the key change, no key opens slot 0"
        if scenario == "two-slots":
            assert cryptsetup_opens(work, RECOVERY, 1), f"killed after write {n}: slot 1 lost its key"
    else:
        raise AssertionError(f"the key change did not finish within {MAX_WRITES} writes")
    assert crashes >= 8, "the key change wrote less than expected: the crash point is not armed"
    assert working_keys(work, scenario) == ["new"]
    if scenario == "two-slots":
        assert cryptsetup_opens(work, RECOVERY, 1)
