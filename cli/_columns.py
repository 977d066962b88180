"""Aligned plain-text columns for the CLI's tables (`volumed get`, `watch`, `meta dump`), without rich.

Cells are text taken as it is: rich read them as console markup, so a resource value like ``[tpm] x`` lost its
``[tpm]`` and one like ``[/var]`` stopped the command with a MarkupError. Control characters (an escape
sequence in a resource value) are shown escaped, never sent to the terminal.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

GAP = "  "
"""Between two columns (what rich's tables without borders put there)."""


def printable(text: str) -> str:
    """``text`` with each control character written as its Python escape (``\\x1b``, ``\\n``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def cell_width(text: str) -> int:
    """Terminal cells ``text`` takes: East Asian wide and full-width characters two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def column_widths(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    """The width each column needs for ``header`` and ``rows``."""
    return [
        max([cell_width(printable(name)), *(cell_width(printable(cells[i])) for cells in rows)])
        for i, name in enumerate(header)
    ]


def format_rows(
    header: Sequence[str] | None,
    rows: Sequence[Sequence[str]],
    widths: Sequence[int],
    *,
    right: Collection[int] = (),
) -> list[str]:
    """One line per row (the header first, when given): each column as wide as ``widths`` says or as its
    widest cell, columns ``right`` aligned to the right, the others to the left; no trailing blanks."""
    table = [
        [printable(text) for text in cells] for cells in [*([header] if header is not None else []), *rows]
    ]
    needed = [max([width, *(cell_width(texts[i]) for texts in table)]) for i, width in enumerate(widths)]
    lines = []
    for texts in table:
        padded = []
        for index, (width, text) in enumerate(zip(needed, texts, strict=True)):
            blank = " " * (width - cell_width(text))
            padded.append(blank + text if index in right else text + blank)
        lines.append(GAP.join(padded).rstrip())
    return lines
