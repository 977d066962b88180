"""``system_disk`` and ``!system_disk``, the selectors nearly every config has, run without cel-python: with
the same results and the same evaluation steps as cel-python's evaluation of the same text."""

from __future__ import annotations

import pytest

from tests._fresh_python import run_python
from volumed.config import DiskSelector, SelectorError, compile_selector
from volumed.config._cel import _SAMPLE_DISK, _PlainProgram, shared_selector_budget
from volumed.config._cel_engine import compile_program

PLAIN = ("system_disk", "!system_disk")


def spent_steps(selector: DiskSelector, *, system_disk: bool) -> tuple[bool, int]:
    with shared_selector_budget() as budget:
        before = budget.steps
        result = selector.matches(_SAMPLE_DISK, system_disk=system_disk)
        return result, before - budget.steps


@pytest.mark.parametrize("expression", PLAIN)
@pytest.mark.parametrize("system_disk", [False, True])
def test_the_plain_program_agrees_with_cel_python(expression: str, system_disk: bool) -> None:
    plain = compile_selector(expression)
    assert isinstance(plain._program, _PlainProgram)
    cel = DiskSelector(expression, compile_program(expression))
    assert spent_steps(plain, system_disk=system_disk) == spent_steps(cel, system_disk=system_disk)
    assert plain.matches(_SAMPLE_DISK, system_disk=system_disk) is (system_disk == (expression == PLAIN[0]))


@pytest.mark.parametrize("expression", PLAIN)
def test_the_shared_budget_runs_out_alike(expression: str) -> None:
    plain = compile_selector(expression)
    cel = DiskSelector(expression, compile_program(expression))
    _, needed = spent_steps(cel, system_disk=True)
    messages = []
    for selector in (plain, cel):
        with shared_selector_budget() as budget:
            budget.steps = needed - 1
            with pytest.raises(SelectorError) as raised:
                selector.matches(_SAMPLE_DISK, system_disk=True)
            messages.append(str(raised.value))
    assert messages[0] == messages[1]
    assert "evaluation steps together (the limit)" in messages[0]


@pytest.mark.parametrize(
    "expression", ["system_disk ", "(system_disk)", "! system_disk", "system_disk == true"]
)
def test_other_spellings_go_through_cel_python(expression: str) -> None:
    assert not isinstance(compile_selector(expression)._program, _PlainProgram)


def test_a_config_with_only_plain_selectors_does_not_load_cel_python() -> None:
    code = """
import sys
from volumed.config import load_config
config = load_config('''apiVersion: v1alpha1
kind: VolumeConfig
name: EPHEMERAL
provisioning:
  diskSelector:
    match: system_disk
---
apiVersion: v1alpha1
kind: UserVolumeConfig
name: data
provisioning:
  diskSelector:
    match: '!system_disk'
  minSize: 1GiB
''')
print(sorted(m for m in ("celpy", "lark", "pendulum", "re2") if m in sys.modules))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
