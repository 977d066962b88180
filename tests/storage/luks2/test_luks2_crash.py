"""Crash safety: stop after the k-th write, for every k, during add-key, kill-slot, change-key, token import.

Afterwards the volume must open normally (repairing a half-written copy) and a passphrase that was valid
before or after the operation must still unlock it: no lockout, ever.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.storage.luks2._luks2_helpers import NEW, OPERATIONS, PASS, count_writes, crash_at, prepared
from volumed.storage.luks2 import Luks2Volume

if TYPE_CHECKING:
    from pathlib import Path


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
