"""Every code fence of docs/*.md opens and closes on a line of its own.

``` followed by text on the closing line (configuration.md's tag 9 example) left the rest of the page rendered
as code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[2] / "docs"
FENCE_LINE = re.compile(r"^\s*```[\w+-]*\s*$")


def fence_problems(text: str) -> list[str]:
    problems = [
        f"line {number}: text on a fence line"
        for number, line in enumerate(text.splitlines(), start=1)
        if "```" in line and line.lstrip().startswith("```") and not FENCE_LINE.match(line)
    ]
    fences = sum(1 for line in text.splitlines() if FENCE_LINE.match(line))
    if fences % 2:
        problems.append(f"{fences} fence lines: one is not closed")
    return problems


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda page: page.name)
def test_fences_are_whole_lines(page: Path) -> None:
    assert fence_problems(page.read_text()) == []


def test_the_checker_sees_text_after_a_closing_fence() -> None:
    assert fence_problems("```\ncode\n``` text\n") == [
        "line 3: text on a fence line",
        "1 fence lines: one is not closed",
    ]
