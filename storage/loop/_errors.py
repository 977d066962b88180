"""Errors raised by the loop-device helpers."""

from __future__ import annotations


class LoopError(OSError):
    """A loop device cannot be attached, read or detached; the message names the device or file.

    Raised as ``LoopError(errno, message)``: ``errno`` is the system error (ENOENT, EBUSY, ENXIO, ...).
    """

    def __str__(self) -> str:
        return self.strerror if self.strerror else super().__str__()
