"""Errors raised by the GPT library."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._table import Partition


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


class ReadOnlyTableError(GPTError):
    """The table was read past a copy whose CRCs are right but which describes another disk (its backup LBA
    is outside this one): that copy may list partitions the one read lacks, so writing is refused until the
    table is repaired (``sgdisk -e``). Raised before anything is written."""


class LayoutError(GPTError, ValueError):
    """A requested change does not fit the table: no free space, bad size, overlap, bad name or index.

    Raised before anything is written, so the device is unchanged.
    """


class InvalidTableError(CorruptTableError):
    """A GPT that reads (signatures and CRCs are right) but describes an impossible layout: partitions that
    overlap each other or the table's own sectors, leave the usable area, end before they start or share a
    unique GUID. Using any partition of it could destroy another's bytes, so nothing on the disk is used.

    ``partitions`` is what the table says (for reporting which volumes the disk would hold); never act on it.
    """

    def __init__(self, message: str, partitions: tuple[Partition, ...] = ()) -> None:
        super().__init__(message)
        self.partitions = partitions
