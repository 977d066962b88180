"""Make a loop device follow its backing file after the file grew (LOOP_SET_CAPACITY)."""

from __future__ import annotations

import fcntl
import os
from typing import Final

from ._errors import ActivationError

LOOP_SET_CAPACITY: Final = 0x4C07


def refresh_loop_capacity(device: str) -> int:
    """Have loop device ``device`` read its backing file's size again; return the device's new size in bytes.

    A loop device keeps the size its file had when it was attached; a mapping above it can only grow once
    the loop device has.
    """
    try:
        fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise ActivationError(f"cannot open {device}: {exc.strerror}") from exc
    try:
        fcntl.ioctl(fd, LOOP_SET_CAPACITY, 0)
        return os.lseek(fd, 0, os.SEEK_END)
    except OSError as exc:
        raise ActivationError(f"cannot update the size of {device}: {exc.strerror}") from exc
    finally:
        os.close(fd)
