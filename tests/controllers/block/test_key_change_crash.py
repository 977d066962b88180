"""A key change through key-slot sync, stopped after each of its writes (kill -9 at every write): the old or
the new key must open the volume afterwards, as cryptsetup sees it.

Key-slot sync used to kill the slot, run the KDF, then add it again: a crash in between left a volume that
no key opens (issue 15, item 2). The crash points come from ``volumed.storage.luks2.faults``, not sleeps.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import anyio
import pytest

from tests._tools import require_tool
from tests.controllers.block._key_change_child import ENC, NEW, OLD, RECOVERY, SCENARIOS
from volumed.controllers.block._encryption import Location, format_encrypted
from volumed.keys.testing import FAKE_TOKEN_TYPE
from volumed.storage.luks2 import Luks2Volume, NoKeyError, faults

CHILD = Path(__file__).with_name("_key_change_child.py")
MAX_WRITES = 64
BATCH = 8


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


def slot_of(scenario: str, key: str) -> int:
    """The slot the old or the new key belongs in (the new one moves to slot 1 in ``move``)."""
    return 1 if scenario == "move" and key == "new" else 0


def working_keys(image: Path, scenario: str) -> list[str]:
    """Which keys open the volume now: the old one (slot 0), the new one (static or through its token)."""
    old_kind, new_kind = scenario.split("-to-") if "-to-" in scenario else ("static", "static")
    working = []
    for name, kind, static_passphrase in (("old", old_kind, OLD), ("new", new_kind, NEW)):
        passphrase = sealed_passphrase(image, 0) if kind == "kms" else static_passphrase
        if passphrase is not None and cryptsetup_opens(image, passphrase, slot_of(scenario, name)):
            working.append(name)
    return working


def our_working_keys(image: Path, scenario: str) -> list[str]:
    """The same question asked of our LUKS2 reader (read-only: before cryptsetup repairs a stale copy)."""
    old_kind, new_kind = scenario.split("-to-") if "-to-" in scenario else ("static", "static")
    working = []
    with Luks2Volume.open(str(image), read_only=True) as volume:
        token = volume.tokens.get(0)
        sealed = None
        if token is not None and token.type == FAKE_TOKEN_TYPE:
            sealed = base64.b64encode(base64.b64decode(token.to_dict()["UserData"]["key"]))
        for name, kind, static_passphrase in (("old", old_kind, OLD), ("new", new_kind, NEW)):
            passphrase = sealed if kind == "kms" else static_passphrase
            if passphrase is None:
                continue
            with contextlib.suppress(NoKeyError):
                volume.unlock(passphrase, keyslot=slot_of(scenario, name))
                working.append(name)
    return working


def base_image(tmp_path: Path, scenario: str) -> Path:
    path = tmp_path / "base.img"
    with path.open("wb") as f:
        f.truncate(32 * 1024 * 1024)
    anyio.run(format_encrypted, Location(str(path)), ENC, SCENARIOS[scenario][0])
    return path


def run_child(image: Path, scenario: str, crash_after: int) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **{faults.ENV: f"key-slot-sync:{crash_after}"})
    return subprocess.run(
        [sys.executable, str(CHILD), str(image), scenario],
        env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def crash_at(
    base: Path, tmp_path: Path, scenario: str, n: int
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """Run the key change on a fresh copy of ``base``, killed after its ``n``-th write."""
    work = tmp_path / f"work-{n}.img"
    shutil.copyfile(base, work)
    return work, run_child(work, scenario, n)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_key_change_killed_at_every_write_keeps_a_working_key(tmp_path: Path, scenario: str) -> None:
    base = base_image(tmp_path, scenario)
    crashes = 0
    finished: Path | None = None
    # Each crash point is an independent run on its own copy of the image: a batch of them at once.
    with ThreadPoolExecutor(max_workers=BATCH) as pool:
        for first in range(1, MAX_WRITES + 1, BATCH):
            points = range(first, first + BATCH)
            for n, (work, result) in zip(
                points, pool.map(partial(crash_at, base, tmp_path, scenario), points), strict=True
            ):
                if result.returncode == 0:
                    assert f"key-slot-sync ended after {n - 1} writes" in result.stderr, result.stderr
                    finished = work
                    break
                assert result.returncode == faults.EXIT_CODE, result.stderr
                crashes += 1
                ours = our_working_keys(work, scenario)
                working = working_keys(work, scenario)
                assert working, f"{scenario}: killed after write {n} of the key change, no key opens it"
                assert ours == working, (
                    f"{scenario}, write {n}: cryptsetup opens with {working}, we with {ours}"
                )
                if scenario == "two-slots":
                    assert cryptsetup_opens(work, RECOVERY, 1), f"killed after write {n}: slot 1 lost its key"
                work.unlink()
            if finished is not None:
                break
    assert finished is not None, f"the key change did not finish within {MAX_WRITES} writes"
    assert crashes >= 8, "the key change wrote less than expected: the crash point is not armed"
    assert working_keys(finished, scenario) == ["new"]
    if scenario == "kms-to-static":  # the sealed key's token went with its key, in the same header write
        assert sealed_passphrase(finished, 0) is None
    if scenario == "two-slots":
        assert cryptsetup_opens(finished, RECOVERY, 1)
