"""The fuse backend looks a volume's loop devices up once per activation and once per deactivation: each look
reads an attribute of every loop device of the machine (hundreds on a shared one), and activate looked three
times (its status, the in-use check, the clean-up), deactivate twice."""

from __future__ import annotations

from typing import TYPE_CHECKING

import volumed.storage.activation._fuse as fuse_backend
from tests.system.activation.test_fuse import NAME, Volume, activator  # noqa: F401 (the fixture)
from volumed.storage import loop

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from volumed.storage.activation import FuseActivator

MiB = 1 << 20


def _count_looks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The targets `loops_backed_by` is called for from now on (it still looks: the real function runs)."""
    looks: list[str] = []
    real = fuse_backend.loops_backed_by

    def counted(target: str, **kwargs: Path) -> list[loop.LoopDevice]:
        looks.append(target)
        return real(target, **kwargs)

    monkeypatch.setattr(fuse_backend, "loops_backed_by", counted)
    return looks


def test_activate_and_deactivate_look_the_loop_devices_up_once(
    tmp_path: Path,
    activator: FuseActivator,  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    volume = Volume(tmp_path, sector_size=4096, size=8 * MiB)
    looks = _count_looks(monkeypatch)

    device = activator.activate(NAME, volume.segment, volume.key)
    assert looks == [str(activator.decrypted_file(NAME))]
    assert [d.path for d in loop.find_attachments(activator.decrypted_file(NAME))] == [device]

    looks.clear()
    assert activator.activate(NAME, volume.segment, volume.key) == device  # already active: its status
    assert len(looks) == 1

    looks.clear()
    activator.deactivate(NAME)
    assert len(looks) == 1
    assert loop.find_attachments(activator.decrypted_file(NAME)) == []
    assert not activator.status(NAME).active
