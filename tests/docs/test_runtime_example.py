"""docs/runtime.md's custom-controller example is executed here, so the documentation cannot rot."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

DOC = Path(__file__).resolve().parents[2] / "docs" / "runtime.md"
_EXAMPLE = re.compile(
    r"<!-- example:start -->\s*```python\n(?P<code>.*?)```\s*<!-- example:end -->", re.DOTALL
)


def _example_module() -> types.ModuleType:
    match = _EXAMPLE.search(DOC.read_text(encoding="utf-8"))
    assert match, f"{DOC} lost its <!-- example:start --> python block <!-- example:end -->"
    module = types.ModuleType("runtime_doc_example")
    module.__file__ = str(DOC)
    sys.modules[module.__name__] = module  # pydantic resolves the specs' annotations through the module
    try:
        exec(compile(match.group("code"), str(DOC), "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    return module


EXAMPLE = _example_module()
TESTS = {name: getattr(EXAMPLE, name) for name in dir(EXAMPLE) if name.startswith("test_")}


def test_the_example_has_a_test() -> None:
    assert TESTS, "the docs example should end with a test of its controller"


@pytest.mark.parametrize("name", sorted(TESTS))
async def test_docs_example(name: str) -> None:
    test: Callable[[], Awaitable[None]] = TESTS[name]
    await test()


def test_example_lines_fit_the_house_line_length() -> None:
    match = _EXAMPLE.search(DOC.read_text(encoding="utf-8"))
    assert match
    long = [line for line in match.group("code").splitlines() if len(line) > 110]
    assert not long, long
