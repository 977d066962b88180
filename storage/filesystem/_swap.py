"""Swap: turning swap on and off through swapon(8)/swapoff(8), and reading the kernel's ``/proc/swaps``.

mkswap is `make_filesystem(device, "swap")`. Talos enables its swap volumes with ``SWAP_FLAG_DISCARD_ONCE``
(``swapon --discard=once``: the whole area is discarded once, at swapon).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from typing import Final, final

from volumed.storage.blockdev import BlockDeviceError, DataIdentity, data_identity

from ._errors import FilesystemError
from ._run import run_tool

PROC_SWAPS: Final = "/proc/swaps"
_OCTAL = re.compile(r"\\([0-7]{3})")


@final
@dataclass(frozen=True)
class SwapEntry:
    """One line of ``/proc/swaps``: sizes in bytes (the kernel writes KiB)."""

    device: str
    type: str
    size: int
    used: int
    priority: int


def parse_swaps(text: str) -> list[SwapEntry]:
    """The entries of a ``/proc/swaps`` text (its first line is the header).

    Raises:
        FilesystemError: a line with fewer than five fields or a field that is not a number (Talos'
            ``invalid swap line``).
    """
    entries: list[SwapEntry] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 5:
            raise FilesystemError(f"invalid swap line in {PROC_SWAPS}: {line!r}")
        try:
            size, used, priority = int(fields[2]), int(fields[3]), int(fields[4])
        except ValueError:
            raise FilesystemError(f"invalid swap line in {PROC_SWAPS}: {line!r}") from None
        device = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), fields[0])  # the kernel escapes blanks
        entries.append(SwapEntry(device, fields[1], size * 1024, used * 1024, priority))
    return entries


def read_swaps(path: str = PROC_SWAPS) -> list[SwapEntry]:
    """The swap areas in use, from ``path`` (blocking)."""
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return parse_swaps(handle.read())


def _same_device(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)
    if stat.S_ISBLK(sa.st_mode) and stat.S_ISBLK(sb.st_mode):
        return sa.st_rdev == sb.st_rdev  # /dev/mapper/x is listed as /dev/dm-N
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _identity(path: str) -> DataIdentity | None:
    try:
        return data_identity(path)
    except BlockDeviceError:
        return None


def active_swap(device: str, path: str = PROC_SWAPS) -> str | None:
    """The device ``/proc/swaps`` lists for the swap area over ``device``'s bytes, None when there is none
    (blocking).

    The bytes, not the node: two loop devices over one partition of an image (a run killed and started again
    without a reboot attaches a second one) are two swap areas to the kernel, and each overwrites the pages
    the other swapped out. A loop device counts as the file and offset it maps; a partition as its disk and
    start.
    """
    wanted = _identity(device)
    for entry in read_swaps(path):
        if _same_device(entry.device, device):
            return entry.device
        if wanted is not None and _identity(entry.device) == wanted:
            return entry.device
    return None


def swap_active(device: str, path: str = PROC_SWAPS) -> bool:
    """Whether swap is on over ``device``'s bytes, through it or another device (blocking)."""
    return active_swap(device, path) is not None


def swap_on(device: str) -> bool:
    """Turn swap on on ``device`` with ``--discard=once``, as Talos does (blocking); False when it already
    was on, through ``device`` or another device over the same bytes (then that area is the one in use).

    Raises:
        ToolError: swapon(8) failed (no swap signature, a device the kernel cannot swap on); its stderr is in
            the message.
    """
    if swap_active(device):
        return False
    run_tool(["swapon", "--discard=once", device])
    return True


def swap_off(device: str) -> bool:
    """Turn swap off over ``device``'s bytes, on the device ``/proc/swaps`` lists for them (blocking); False
    when it was not on.

    Raises:
        ToolError: swapoff(8) failed (the pages on it do not fit in memory).
    """
    listed = active_swap(device)
    if listed is None:
        return False
    run_tool(["swapoff", listed])
    return True
