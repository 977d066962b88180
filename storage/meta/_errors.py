"""Errors of the META partition library, by meaning."""

from __future__ import annotations


class MetaError(Exception):
    """Base of every error :mod:`volumed.storage.meta` raises."""


class MetaDeviceError(MetaError):
    """The device or image cannot be opened, locked, read or written, or is too small to hold META."""


class MetaCorruptError(MetaError):
    """Neither ADV copy is valid and the area is not blank: this may not be a META partition at all.

    Raised by writes (unless forced), never by reads: a read reports the state instead.
    """


class MetaValueError(MetaError):
    """A tag or value cannot be stored: tag out of range, or the value does not fit in the free space."""
