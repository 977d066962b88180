"""A click type for a duration in seconds: a finite number no smaller than a floor.

`click.FloatRange` lets ``nan``, ``inf`` and ``1e309`` through (comparisons with nan are false; inf is in an
open-ended range), and a positive number as small as ``1e-320`` is a zero in practice: a poll that never
sleeps. Each was accepted by `volumed run` and failed later, or spun a CPU.
"""

from __future__ import annotations

import math
from typing import Final, final

import click

MIN_SECONDS: Final = 0.1


@final
class Seconds(click.ParamType[float]):
    """Seconds, finite and at least ``minimum`` (`MIN_SECONDS` unless told)."""

    name = "seconds"

    def __init__(self, minimum: float = MIN_SECONDS) -> None:
        self.minimum = minimum

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float) and math.isfinite(value) and value >= self.minimum:
            return value  # a default
        try:
            seconds = float(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        if seconds < self.minimum:
            self.fail(f"{value!r} is below the minimum of {self.minimum:g} s", param, ctx)
        return seconds

    def __repr__(self) -> str:
        return f"Seconds(minimum={self.minimum!r})"
