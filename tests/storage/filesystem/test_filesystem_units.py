"""Filesystem helpers without running tools: mountinfo parsing, argument checks, error texts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from volumed.storage.filesystem import (
    ToolError,
    ToolMissingError,
    UnsupportedFilesystemError,
    find_mount,
    grow_filesystem,
    make_filesystem,
    parse_mountinfo,
)
from volumed.storage.filesystem._run import find_tool, run_tool

if TYPE_CHECKING:
    from pathlib import Path

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
30 22 7:0 / /var/mnt/my\\040data rw,nosuid shared:12 - xfs /dev/loop0 rw,attr2,inode64
31 30 7:1 /sub /var/mnt/my\\040data rw - ext4 /dev/loop1 rw
40 22 0:5 / /proc rw - proc proc rw
"""


def test_parse_mountinfo_unescapes_and_splits() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert [m.target for m in mounts] == ["/", "/var/mnt/my data", "/var/mnt/my data", "/proc"]
    m = mounts[1]
    assert (m.mount_id, m.major, m.minor, m.fstype, m.source) == (30, 7, 0, "xfs", "/dev/loop0")
    assert m.options == ("rw", "nosuid")
    assert m.super_options == ("rw", "attr2", "inode64")
    assert mounts[2].root == "/sub"


def test_find_mount_returns_the_topmost(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    top = find_mount("/var/mnt/my data", mountinfo=str(info))
    assert top is not None
    assert top.source == "/dev/loop1"
    assert find_mount("/var/mnt/other", mountinfo=str(info)) is None


def test_this_process_sees_the_root_mount() -> None:
    root = find_mount("/")
    assert root is not None


def test_make_filesystem_rejects_bad_arguments_before_running_anything(tmp_path: Path) -> None:
    target = tmp_path / "img"
    target.write_bytes(b"")
    with pytest.raises(
        UnsupportedFilesystemError, match=r"unsupported filesystem 'zfs' \(expected one of xfs"
    ):
        make_filesystem(target, "zfs")
    with pytest.raises(
        UnsupportedFilesystemError, match=r"label 'thirteen-char' is not valid for xfs: 1..12"
    ):
        make_filesystem(target, "xfs", label="thirteen-char")
    with pytest.raises(UnsupportedFilesystemError, match=r"not valid for ext4: 1..16"):
        make_filesystem(target, "ext4", label="")
    with pytest.raises(UnsupportedFilesystemError, match="only be grown while mounted"):
        grow_filesystem(target, "xfs")
    with pytest.raises(UnsupportedFilesystemError, match="growing 'swap' is not supported"):
        grow_filesystem(target, "swap")


def test_tool_errors_carry_the_status_and_stderr() -> None:
    with pytest.raises(
        ToolError, match=r"^ls failed with exit status 2: .*cannot access '/nonexistent'"
    ) as info:
        run_tool(["ls", "/nonexistent"])
    assert info.value.returncode == 2
    assert info.value.argv == ("ls", "/nonexistent")
    with pytest.raises(ToolMissingError, match=r"mkfs.nothing is not installed"):
        find_tool("mkfs.nothing")
