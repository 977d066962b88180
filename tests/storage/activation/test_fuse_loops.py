"""The fuse backend finds a volume's loop devices by their backing file, reading only that attribute of the
others (every status check looks them up; a machine may have hundreds of loop devices)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.storage.activation._fuse import loops_backed_by

if TYPE_CHECKING:
    from pathlib import Path


def _loop(sys_block: Path, name: str, **attributes: str) -> None:
    """A fake sysfs entry /sys/block/NAME: ``backing_file`` etc. under loop/, ``ro`` and ``size`` beside."""
    (sys_block / name / "loop").mkdir(parents=True)
    for attribute, value in attributes.items():
        where = sys_block / name if attribute in ("ro", "size") else sys_block / name / "loop"
        (where / attribute).write_text(value + "\n")


def test_only_the_backing_file_of_other_loop_devices_is_read(tmp_path: Path) -> None:
    sys_block = tmp_path / "block"
    target = "/run/volumed/fuse/luks2-STATE/luks2-STATE"
    full = {"offset": "0", "sizelimit": "0", "autoclear": "0", "ro": "0", "size": "2048"}
    _loop(sys_block, "loop7", backing_file=target, **full)
    _loop(sys_block, "loop3", backing_file=target, **full)
    # Another file's loop device whose other attributes cannot be parsed: reading them would raise.
    _loop(sys_block, "loop1", backing_file="/images/other.img", offset="not a number")
    (sys_block / "loop2").mkdir()  # not attached: no loop/ directory
    (sys_block / "sda").mkdir()

    found = loops_backed_by(target, sys_block=sys_block)

    assert [(d.path, d.number, d.backing_file, d.size) for d in found] == [
        ("/dev/loop3", 3, target, 2048 * 512),
        ("/dev/loop7", 7, target, 2048 * 512),
    ]


def test_no_sysfs_block_directory_means_no_loop_devices(tmp_path: Path) -> None:
    assert loops_backed_by("/x", sys_block=tmp_path / "missing") == []
