"""docs/runtime.md's custom-controller example is executed here, so the documentation cannot rot."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from volumed.runtime import WrappedState
from volumed.runtime.testing.conformance import (
    SUITE_REGISTRY,
    BackendSetup,
    RuntimeConformance,
    StateConformance,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

DOC = Path(__file__).resolve().parents[2] / "docs" / "runtime.md"


def _block(marker: str) -> re.Pattern[str]:
    return re.compile(
        rf"<!-- {marker}:start -->\s*```python\n(?P<code>.*?)```\s*<!-- {marker}:end -->", re.DOTALL
    )


_EXAMPLE = _block("example")
CONFORMANCE_EXAMPLE = _block("conformance-example")


def _example_module(
    pattern: re.Pattern[str] = _EXAMPLE, name: str = "runtime_doc_example"
) -> types.ModuleType:
    match = pattern.search(DOC.read_text(encoding="utf-8"))
    assert match, f"{DOC} lost its python block {pattern.pattern[:40]}..."
    module = types.ModuleType(name)
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


@pytest.mark.parametrize("pattern", [_EXAMPLE, CONFORMANCE_EXAMPLE], ids=["example", "conformance"])
def test_example_lines_fit_the_house_line_length(pattern: re.Pattern[str]) -> None:
    match = pattern.search(DOC.read_text(encoding="utf-8"))
    assert match
    long = [line for line in match.group("code").splitlines() if len(line) > 110]
    assert not long, long


async def test_the_conformance_example_runs_both_suites_on_its_backend(tmp_path: Path) -> None:
    """One test of each class of the docs' conformance example, on the backend it opens (the whole of both
    suites runs in a new project in tests/interop/packaging/test_testing_extra.py)."""
    module = _example_module(CONFORMANCE_EXAMPLE, "runtime_doc_conformance_example")
    classes = {name: value for name, value in vars(module).items() if name.startswith("Test")}
    assert set(classes) == {"TestMyState", "TestRuntimeOnMyState"}
    state_suite, runtime_suite = classes["TestMyState"](), classes["TestRuntimeOnMyState"]()
    assert isinstance(state_suite, StateConformance)
    assert isinstance(runtime_suite, RuntimeConformance)
    assert state_suite.persistent
    for index, (suite, test) in enumerate(
        [
            (state_suite, state_suite.test_create_stamps_version_times_owner),
            (runtime_suite, runtime_suite.test_a_chain_of_controllers_converges_and_follows_changes),
        ]
    ):
        directory = tmp_path / str(index)
        directory.mkdir()
        async with suite.open_backend(BackendSetup(SUITE_REGISTRY, directory)) as core:
            await test(WrappedState(core))
