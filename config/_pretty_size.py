"""Talos' ``pretty_size`` of disks and discovered volumes: ``humanize.Bytes(size)`` of go-humanize v1.0.1.

Talos (``pkg/machinery/resources/block`` ``SetSize``) fills it with SI units (``1.0 GB`` for 10^9 bytes,
``kB`` with a small k), one decimal below 10 and none from 10 up; sizes under 10 bytes are ``<n> B``.
"""

from __future__ import annotations

import math
from typing import Final

_UNITS: Final = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


def pretty_size(size: int) -> str:
    """``size`` bytes as go-humanize's ``Bytes`` writes it (the same float steps: log base 1000, rounded to
    one decimal half up, then ``%.1f`` below 10 and ``%.0f`` from 10 up)."""
    if size < 10:
        return f"{size} B"
    exponent = math.floor(math.log(size) / math.log(1000))
    value = math.floor(float(size) / math.pow(1000, exponent) * 10 + 0.5) / 10
    return f"{value:.1f} {_UNITS[exponent]}" if value < 10 else f"{value:.0f} {_UNITS[exponent]}"
