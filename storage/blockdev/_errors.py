"""Errors raised by the block-device helpers."""

from __future__ import annotations


class BlockDeviceError(OSError):
    """A device or image file cannot be opened, sized or accessed as asked; the message names the path.

    Raised as ``BlockDeviceError(errno, message)``: ``errno`` is the system error (EBUSY, ENOENT, ...)
    and ``str()`` is the message alone.
    """

    def __str__(self) -> str:
        return self.strerror if self.strerror else super().__str__()


class RegionBoundsError(BlockDeviceError, ValueError):
    """A read or write falls outside its region; nothing was written."""
