"""Loop devices for the storage system tests: attach with losetup, always detached afterwards.

This host's kernel has no partition-table parsers (``losetup -P`` makes no ``loopNpM`` nodes), so a
partition is attached as its own loop device over its byte range (``--offset``/``--sizelimit``).
"""

from __future__ import annotations

import contextlib
import subprocess
from typing import TYPE_CHECKING

from tests._tools import require_root, require_tool

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@contextlib.contextmanager
def loop_device(
    path: Path, *, offset: int = 0, size: int | None = None, sector_size: int | None = None
) -> Iterator[str]:
    """Attach ``path`` (or the byte range ``offset``..``offset+size``) as a loop device; detach on exit."""
    require_root()
    argv = [require_tool("losetup"), "--find", "--show"]
    if offset:
        argv += ["--offset", str(offset)]
    if size is not None:
        argv += ["--sizelimit", str(size)]
    if sector_size is not None:
        argv += ["--sector-size", str(sector_size)]
    dev = subprocess.run([*argv, str(path)], capture_output=True, text=True, check=True).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run([require_tool("losetup"), "--detach", dev], check=False)


@contextlib.contextmanager
def unmounting(target: Path) -> Iterator[Path]:
    """Make sure ``target`` is unmounted when the block exits."""
    try:
        yield target
    finally:
        subprocess.run([require_tool("umount"), str(target)], capture_output=True, check=False)


def blkid(dev: str) -> dict[str, str]:
    done = subprocess.run(
        [require_tool("blkid"), "-p", "-o", "export", dev], capture_output=True, text=True, check=False
    )
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
