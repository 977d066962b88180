"""Running the external filesystem tools synchronously with clear errors."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import TYPE_CHECKING, Final

from ._errors import ToolError, ToolMissingError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

_PACKAGES: Final = {
    "mkfs.xfs": "xfsprogs",
    "xfs_growfs": "xfsprogs",
    "mkfs.ext4": "e2fsprogs",
    "resize2fs": "e2fsprogs",
    "mkswap": "util-linux",
    "swapon": "mount",
    "swapoff": "mount",
    "mount": "mount",
    "umount": "mount",
}
_SEARCH: Final = os.pathsep.join((os.environ.get("PATH", ""), "/usr/sbin", "/sbin"))


def find_tool(name: str) -> str:
    """The path of a tool, searching the sbin directories too."""
    path = shutil.which(name, path=_SEARCH)
    if path is None:
        package = _PACKAGES.get(name, name)
        raise ToolMissingError(f"{name} is not installed (Debian package {package})")
    return path


def run_tool(argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 300) -> str:
    """Run ``argv`` (first element a tool name), return its stdout; ``ToolError`` with stderr on failure."""
    full = [find_tool(argv[0]), *argv[1:]]
    merged = None if env is None else {**os.environ, **env}
    try:
        done = subprocess.run(
            full,
            capture_output=True,
            text=True,
            env=merged,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ToolError(argv, -1, f"timed out after {timeout} s") from None
    if done.returncode != 0:
        raise ToolError(argv, done.returncode, done.stderr or done.stdout)
    return done.stdout
