"""docs/runtime.md's event-source example is executed here, so the documentation cannot rot."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "runtime.md"
_BLOCK = re.compile(
    r"<!-- sources-example:start -->\s*```python\n(?P<code>.*?)```\s*<!-- sources-example:end -->", re.DOTALL
)


def _example() -> types.ModuleType:
    match = _BLOCK.search(DOC.read_text(encoding="utf-8"))
    assert match, f"{DOC} lost its event-source example"
    module = types.ModuleType("runtime_doc_sources_example")
    module.__file__ = str(DOC)
    sys.modules[module.__name__] = module
    try:
        exec(compile(match.group("code"), str(DOC), "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    return module


EXAMPLE = _example()


async def test_the_event_source_example() -> None:
    await EXAMPLE.test_a_message_reloads()
