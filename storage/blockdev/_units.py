"""Byte sizes shown to people: ``100 MiB``, ``1.5 GiB`` (parsing is ``volumed.config.parse_size``)."""

from __future__ import annotations


def format_size(size: int) -> str:
    """A short binary size: ``1 MiB``, ``100 MiB``, ``1.5 GiB``, ``512 B``."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} B"
