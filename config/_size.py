"""Sizes as Talos writes them: ``10GiB``, ``100MB``, ``2.5GiB``, plain bytes (go-humanize ParseBytes), and
for a ``maxSize`` also a percentage (``80%``, Talos' ``PercentageSize``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

_KIB: Final = 1024
_KB: Final = 1000

# Unit names are matched case-insensitively after the number, surrounding spaces ignored; "" means bytes.
_UNITS: Final[dict[str, int]] = {
    "": 1,
    "b": 1,
    **{name: _KB**power for power, letter in enumerate("kmgtpe", start=1) for name in (letter, letter + "b")},
    **{
        name: _KIB**power
        for power, letter in enumerate("kmgtpe", start=1)
        for name in (letter + "i", letter + "ib")
    },
}
_MAX_UINT64: Final = 2**64 - 1
# Fraction digits that can change a size's whole bytes: 1024**6 = 2**60 has a 60-digit inverse.
_FRACTION_DIGITS: Final = 64


@dataclass(frozen=True, slots=True)
class ByteSize:
    """A size in bytes together with the text it was written as (so a document can be shown as written).

    Attributes:
        raw: the text from the document (``"10GiB"``), or the decimal number for plain integers.
        value: the size in bytes.
    """

    raw: str
    value: int

    def __str__(self) -> str:
        return self.raw


def parse_size(text: str) -> ByteSize:
    """Parse a human-readable size the way Talos does (go-humanize ``ParseBytes``).

    Decimal units (``kB``, ``MB``, ``GB``, ``T``...) are powers of 1000, IEC units (``KiB``, ``Mi``...)
    powers of 1024, a bare number is bytes; fractions (``2.5GiB``) are rounded down to whole bytes and
    commas in the number are ignored.

    Raises:
        ValueError: naming the text and what is wrong with it.
    """
    try:
        return _parse(text)
    except _SizeError as error:
        unit = f" {error.unit!r}" if error.unit is not None else ""
        raise ValueError(f"invalid size {text!r}: {error.reason}{unit}") from None


class _SizeError(ValueError):
    """What is wrong with a size, without its text (config errors must not quote the document)."""

    def __init__(self, reason: str, unit: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unit = unit


def _parse(text: str) -> ByteSize:
    end = 0
    while end < len(text) and ((text[end].isdigit() and text[end].isascii()) or text[end] in ".,"):
        end += 1
    number = text[:end].replace(",", "")
    unit = text[end:].strip().lower()
    if not number or number == "." or number.count(".") > 1:
        raise _SizeError("expected a number followed by an optional unit (e.g. 10GiB)")
    multiplier = _UNITS.get(unit)
    if multiplier is None:
        raise _SizeError("unknown unit", unit)
    # Python refuses to convert more than 4300 digits (sys.set_int_max_str_digits), and it would be slow:
    # beyond 20 integer digits (leading zeros aside) the size is past uint64 whatever the unit, and beyond
    # _FRACTION_DIGITS fraction digits the whole bytes do not change (a unit's power of 2 or 10 has fewer).
    integer, _, fraction = number.partition(".")
    integer = integer.lstrip("0")
    if len(integer) > len(str(_MAX_UINT64)):
        raise _SizeError("too large")
    value = Fraction(f"{integer or '0'}.{fraction[:_FRACTION_DIGITS] or '0'}") * multiplier
    if value > _MAX_UINT64:
        raise _SizeError("too large")
    return ByteSize(raw=text, value=int(value))


def coerce_size(value: object) -> ByteSize:
    """Accept a YAML size: a string with an optional unit or a non-negative integer number of bytes.

    Raises:
        ValueError: what is wrong, without the value (it is text of the config).
    """
    if isinstance(value, ByteSize):
        return value
    if isinstance(value, bool):
        raise ValueError("invalid size: expected a string like 10GiB or a number of bytes, got a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("invalid size: cannot be negative")
        if value > _MAX_UINT64:
            raise ValueError("invalid size: too large")
        return ByteSize(raw=str(value), value=value)
    if isinstance(value, str):
        try:
            return _parse(value)
        except _SizeError as error:
            unit = " (units: B, kB, KiB, MB, MiB, GB, GiB, TB, TiB, PB, PiB, EB, EiB)" if error.unit else ""
            raise ValueError(f"invalid size: {error.reason}{unit}") from None
    raise ValueError(
        f"invalid size: expected a string like 10GiB or a number of bytes, got {type(value).__name__}"
    )


@dataclass(frozen=True, slots=True)
class PercentageSize:
    """A relative size, ``80%``: a share of the space a volume may take (Talos' ``PercentageSize``).

    Attributes:
        raw: the text from the document.
        percent: the whole percent, 0..100 (Talos truncates ``50.5%`` to 50).
    """

    raw: str
    percent: int

    def __str__(self) -> str:
        return self.raw


# A decimal number as Go's strconv.ParseFloat reads one (inf, nan and hex floats are refused here: Talos
# would turn them into no sensible percentage).
_DECIMAL: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def coerce_max_size(value: object) -> ByteSize | PercentageSize:
    """Accept a ``maxSize``: a size as :func:`coerce_size` does, or a percentage (text with ``%``).

    Raises:
        ValueError: what is wrong, in Talos' words, without the value (it is text of the config).
    """
    if not isinstance(value, str) or "%" not in value:
        return coerce_size(value)
    if not value.endswith("%"):
        raise ValueError("invalid size: percentage must end with '%'")
    number = value[:-1]
    if len(number) > 400 or not _DECIMAL.fullmatch(number):
        raise ValueError("invalid size: invalid percentage value")
    percent = float(number)
    if not 0 <= percent <= 100:
        raise ValueError("invalid size: percentage must be between 0 and 100")
    return PercentageSize(raw=value, percent=int(percent))
