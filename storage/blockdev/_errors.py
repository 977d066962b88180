"""Errors raised by the block-device helpers."""

from __future__ import annotations


class BlockDeviceError(OSError):
    """A device or image file cannot be opened, sized or accessed as asked; the message names the path."""


class RegionBoundsError(BlockDeviceError, ValueError):
    """A read or write falls outside its region; nothing was written."""
