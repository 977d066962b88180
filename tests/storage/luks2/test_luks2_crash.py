"""Crash safety: stop after the k-th write, for every k, during add-key, kill-slot, change-key, token import.

Afterwards the volume must open normally (repairing a half-written copy) and a passphrase that was valid
before or after the operation must still unlock it: no lockout, ever.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.storage.luks2._luks2_helpers import OTHER, PASS, PBKDF2_FAST, Crash, CrashAfter, format_small
from volumed.storage.luks2 import Luks2Volume

if TYPE_CHECKING:
    from pathlib import Path

NEW = b"new passphrase"

Operation = Callable[[Luks2Volume], object]

OPERATIONS: dict[str, tuple[Operation, tuple[bytes, ...]]] = {
    # operation, passphrases of which at least one must open afterwards (all that must keep working)
    "add-key": (lambda v: v.add_key(NEW, passphrase=PASS, kdf=PBKDF2_FAST), (PASS,)),
    "kill-slot": (lambda v: v.kill_slot(1), (PASS,)),
    "change-key": (lambda v: v.change_key(PASS, NEW, keyslot=0, kdf=PBKDF2_FAST), (PASS, NEW)),
    "token-import": (lambda v: v.import_token({"type": "t", "keyslots": ["0"]}, token_id=0), (PASS,)),
}


def prepared(tmp_path: Path) -> Path:
    path = tmp_path / "base.img"
    with format_small(path) as vol:
        vol.add_key(OTHER, passphrase=PASS, kdf=PBKDF2_FAST)
    return path


def count_writes(base: Path, work: Path, op: Operation) -> int:
    shutil.copyfile(base, work)
    with open(work, "r+b") as f:
        wrapper = CrashAfter(f, 10**6)
        op(Luks2Volume.from_files(wrapper))  # type: ignore[arg-type]
        return wrapper.writes


def crash_at(base: Path, work: Path, op: Operation, k: int) -> None:
    shutil.copyfile(base, work)
    with open(work, "r+b") as f, pytest.raises(Crash):
        op(Luks2Volume.from_files(CrashAfter(f, k)))  # type: ignore[arg-type]


def opens_with(path: Path, passphrases: tuple[bytes, ...]) -> list[bytes]:
    from volumed.storage.luks2 import NoKeyError

    working = []
    with Luks2Volume.open(path) as vol:
        for secret in passphrases:
            try:
                vol.unlock(secret)
                working.append(secret)
            except NoKeyError:
                pass
    return working


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_every_crash_point_leaves_a_working_volume(tmp_path: Path, name: str) -> None:
    op, must = OPERATIONS[name]
    base = prepared(tmp_path)
    work = tmp_path / "work.img"
    total = count_writes(base, work, op)
    assert total >= 6  # both copies written in three steps each
    for k in range(total):
        crash_at(base, work, op, k)
        working = opens_with(work, (PASS, NEW))
        if name == "change-key":
            assert working, f"{name}: locked out after write {k}"
        else:
            assert set(must) <= set(working), f"{name}: lost a passphrase after write {k}"
        with Luks2Volume.open(work) as vol:  # the header is whole again after the repair above
            assert vol.seqid in (4, 5)
