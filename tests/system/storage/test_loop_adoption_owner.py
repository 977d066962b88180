"""Only loop devices volumed attached are adopted after a restart (review31 F3): another program's loop device
over a volume's bytes (``losetup -o OFFSET --sizelimit ...``, no autoclear: losetup's default) was taken as a
killed run's, resized to the volume and detached at stop. It is now a conflict, named, and left as it is."""

from __future__ import annotations

import contextlib
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_tool
from volumed.controllers.block._services import left_attached, left_mount
from volumed.storage import loop

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MIB = 1 << 20
OFFSET = MIB
SIZE = 16 * MIB


@pytest.fixture
def image(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data.img"
    with path.open("wb") as handle:
        handle.truncate(34 * MIB)
    yield path
    for device in loop.find_attachments(path):
        with contextlib.suppress(loop.LoopError):
            loop.detach(device)


def losetup(image: Path, size_limit: int, *options: str) -> str:
    """Attach as another program would (losetup, no autoclear), or a volumed from before the mark."""
    argv = [
        require_tool("losetup"),
        *options,
        "-o",
        str(OFFSET),
        "--sizelimit",
        str(size_limit),
        "--find",
        "--show",
    ]
    return subprocess.run([*argv, str(image)], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize(
    ("size_limit", "options"),
    [(MIB, ()), (SIZE + MIB, ()), (SIZE, ("--read-only",))],
    ids=["smaller", "larger", "exact-but-read-only"],
)
def test_another_programs_loop_device_over_the_bytes_is_a_conflict_left_untouched(
    image: Path, size_limit: int, options: tuple[str, ...]
) -> None:
    """Only the exact geometry volumed attached with before the mark is adopted unmarked (review32 F2)."""
    theirs = losetup(image, size_limit, *options)
    with pytest.raises(loop.LoopError, match=f"{theirs} .*was not attached by volumed"):
        left_attached(str(image), OFFSET, SIZE, set())
    after = loop.read_loop_device(theirs)
    assert after is not None  # still attached, at its own size
    assert (after.offset, after.size_limit) == (OFFSET, size_limit)
    assert [d.path for d in loop.find_attachments(image)] == [theirs]  # no second device either


def test_volumeds_own_loop_devices_are_marked_and_adopted(image: Path) -> None:
    exact = loop.attach(image, offset=OFFSET, size_limit=SIZE)
    backing = loop.loop_backing_of(exact.path)
    assert backing is not None
    assert backing.attached_by_volumed
    theirs = losetup(image, MIB)
    other = loop.loop_backing_of(theirs)
    assert other is not None
    assert not other.attached_by_volumed
    # volumed's own device is taken; the other program's, also there, is not touched
    adopted = left_attached(str(image), OFFSET, SIZE, set())
    assert adopted is not None
    assert adopted.path == exact.path
    loop.detach(exact)


def test_volumeds_own_smaller_loop_device_is_still_adopted_and_resized(image: Path) -> None:
    mine = loop.attach(image, offset=OFFSET, size_limit=MIB)  # a grow cut short left it at the old size
    adopted = left_attached(str(image), OFFSET, SIZE, set())
    assert adopted is not None
    assert (adopted.path, adopted.size_limit) == (mine.path, SIZE)
    backing = loop.loop_backing_of(mine.path)
    assert backing is not None
    assert backing.attached_by_volumed
    # held by this run: not adopted twice, and its being there is no conflict either
    assert left_attached(str(image), OFFSET, SIZE, {mine.path}) is None


def test_another_programs_loop_device_mounted_at_a_target_is_not_taken_for_an_earlier_runs(
    image: Path, tmp_path: Path
) -> None:
    """left_mount: such a mount was released (unmounted, its loop device detached) as a killed run's."""
    target = tmp_path / "target"
    target.mkdir()
    theirs = losetup(image, SIZE)
    subprocess.run([require_tool("mkfs.ext4"), "-q", theirs], check=True, capture_output=True)
    subprocess.run([require_tool("mount"), theirs, str(target)], check=True, capture_output=True)
    try:
        assert left_mount(target, [str(image)], set(), set()) is None
    finally:
        subprocess.run([require_tool("umount"), str(target)], check=True, capture_output=True)
    mine = loop.attach(image, offset=OFFSET, size_limit=SIZE)
    subprocess.run([require_tool("mount"), mine.path, str(target)], check=True, capture_output=True)
    try:
        left = left_mount(target, [str(image)], set(), set())
        assert left is not None
        assert left.device == mine.path
    finally:
        subprocess.run([require_tool("umount"), str(target)], check=True, capture_output=True)


def test_an_unmarked_device_of_exactly_the_volumes_region_is_adopted_as_before_the_mark(
    image: Path, tmp_path: Path
) -> None:
    """review32 F2: a volumed from before fb2d38e attached without the mark; restarted across the upgrade
    without a reboot, every volume on an image file failed ("not attached by volumed") with its device
    mounted at the volume's own target. The rule those versions adopted by (exact offset and size limit, no
    autoclear) still holds for an unmarked device; it is never resized."""
    target = tmp_path / "target"
    target.mkdir()
    old = losetup(image, SIZE)  # what a volumed from before the mark attached
    subprocess.run([require_tool("mkfs.ext4"), "-q", old], check=True, capture_output=True)
    subprocess.run([require_tool("mount"), old, str(target)], check=True, capture_output=True)
    try:
        adopted = left_attached(str(image), OFFSET, SIZE, set())
        assert adopted is not None
        assert (adopted.path, adopted.offset, adopted.size_limit) == (old, OFFSET, SIZE)
        assert left_attached(str(image), OFFSET, SIZE, {old}) is None  # held: no conflict, no second one
        # a larger volume (its partition grew) does not resize an unmarked device: a conflict, untouched
        with pytest.raises(loop.LoopError, match="was not attached by volumed"):
            left_attached(str(image), OFFSET, SIZE + MIB, set())
        after = loop.read_loop_device(old)
        assert after is not None
        assert after.size_limit == SIZE
    finally:
        subprocess.run([require_tool("umount"), str(target)], check=True, capture_output=True)
    assert [d.path for d in loop.find_attachments(image)] == [old]


def test_the_conflicts_advice_works_for_a_mounted_device(image: Path, tmp_path: Path) -> None:
    """review32 F2: the message said "detach it (losetup -d)", which on a mounted device only sets
    autoclear: the device stayed and the volume failed again. It names the mount to unmount first."""
    target = tmp_path / "target"
    target.mkdir()
    theirs = losetup(image, MIB)
    subprocess.run([require_tool("mkfs.ext4"), "-q", theirs], check=True, capture_output=True)
    subprocess.run([require_tool("mount"), theirs, str(target)], check=True, capture_output=True)
    try:
        with pytest.raises(loop.LoopError) as raised:
            left_attached(str(image), OFFSET, SIZE, set())
    finally:
        subprocess.run([require_tool("umount"), str(target)], check=True, capture_output=True)
    message = str(raised.value.strerror)
    assert f"unmount it (umount {target}) and detach it (losetup -d {theirs})" in message
    # following it (the umount above, then losetup -d) frees the bytes
    subprocess.run([require_tool("losetup"), "-d", theirs], check=True, capture_output=True)
    assert left_attached(str(image), OFFSET, SIZE, set()) is None
