"""A disk's ``/dev/disk/by-*`` links, found the way Talos' SymlinksController finds them.

Talos (``controllers/block/symlinks.go``) walks ``/dev/disk`` recursively: an entry that ``stat`` (following
links) shows as a directory is walked too; any other entry whose ``readlink`` works and whose name does not
start with ``.#`` (udev's temporary links) is a link to the device named by the last element of its target;
dangling links and plain files are skipped. A Disk's ``symlinks`` are the links whose target names the disk,
sorted.
"""

from __future__ import annotations

import os
import posixpath
from typing import Final

DISK_LINKS_DIR: Final = "disk"
"""Under the device root (``/dev``)."""
TEMPORARY_PREFIX: Final = ".#"
"""udev writes a link under this name, then renames it into place."""


def disk_symlinks(name: str, *, dev_root: str = "/dev") -> tuple[str, ...]:
    """The links under ``<dev_root>/disk`` that lead to the device ``name`` (``sda``, ``nvme0n1``), named as
    if ``dev_root`` were ``/dev`` (``/dev/disk/by-id/...``), sorted; () when there is no ``/dev/disk``."""
    base = os.path.join(dev_root, DISK_LINKS_DIR)
    found: list[str] = []
    _walk(base, name, found, frozenset())
    return tuple(sorted("/dev/" + DISK_LINKS_DIR + path[len(base) :] for path in found))


def _walk(directory: str, name: str, found: list[str], above: frozenset[tuple[int, int]]) -> None:
    """Walk ``directory``; ``above`` holds the directories being walked around it (their device and inode)."""
    try:
        info = os.stat(directory)
        entries = sorted(os.listdir(directory))
    except OSError:
        return  # gone meanwhile, or unreadable: nothing of it (Talos skips a missing one)
    key = (info.st_dev, info.st_ino)
    if key in above:
        return  # a link to a directory it is inside of: Talos would walk it forever, we stop
    above = above | {key}
    for entry in entries:
        path = os.path.join(directory, entry)
        try:
            is_dir = os.path.isdir(path)  # stat follows links: a link to a directory is walked
            if not is_dir and not os.path.exists(path):
                continue  # dangling
        except OSError:
            continue
        if is_dir:
            _walk(path, name, found, above)
            continue
        try:
            target = os.readlink(path)
        except OSError:
            continue  # not a link (EINVAL) or gone
        if not entry.startswith(TEMPORARY_PREFIX) and posixpath.basename(target) == name:
            found.append(path)
