"""Errors raised by the GPT library."""

from __future__ import annotations


class GPTError(Exception):
    """Base class of every GPT error."""


class CorruptTableError(GPTError):
    """Neither the primary nor the backup GPT header (with its entry array) is valid.

    Raised when reading; the message names each copy and what is wrong with it. Not raised when only one
    copy is damaged: the table is then read from the other one and the damage is listed in
    ``PartitionTable.damage``.
    """


class NoPartitionTableError(CorruptTableError):
    """The device carries no GPT at all (no ``EFI PART`` signature in either header location)."""


class LayoutError(GPTError, ValueError):
    """A requested change does not fit the table: no free space, bad size, overlap, bad name or index.

    Raised before anything is written, so the device is unchanged.
    """
