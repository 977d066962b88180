"""A selector's text reaches neither stderr (RE2's error log) nor the debug log (cel-python's).

``disk.model.matches("(S3cr3tXq")`` was valid, and RE2 wrote ``Error parsing '(S3cr3tXq': missing ): ...`` to
stderr at validation and at every evaluation; `volumed run -v` logged cel-python's syntax trees.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from volumed.config import DiskDescription, SelectorError, check_config, compile_selector

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "S3cr3tXq"
DISK = DiskDescription(dev_path="/dev/sda", size=1, model="model", serial="(")


@pytest.mark.parametrize(
    ("expression", "column"),
    [
        (f'disk.model.matches("({SECRET}")', 20),
        (f'matches(disk.model, "({SECRET}")', 21),
        (f'disk.size > 1u && disk.model.matches("[{SECRET}")', 38),  # not reached on the sample disk
        (f'false && disk.model.matches(r"a(?P<{SECRET}")', 29),
    ],
)
def test_an_invalid_constant_regex_is_refused_by_position(expression: str, column: int) -> None:
    with pytest.raises(SelectorError) as error:
        compile_selector(expression)
    assert str(error.value) == f"invalid regular expression at line 1, column {column}"


def test_a_computed_invalid_regex_is_an_evaluation_error_without_its_text() -> None:
    selector = compile_selector(f'disk.model.matches(disk.serial + "{SECRET}")')
    with pytest.raises(SelectorError, match=r"^disk selector: invalid regular expression$"):
        selector.matches(DISK)


def test_valid_regexes_still_match() -> None:
    assert compile_selector(r'disk.model.matches("^mo.*l$")').matches(DISK)
    assert not compile_selector(r'matches(disk.model, "\\d")').matches(DISK)


def test_re2_writes_nothing_to_stderr(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: u\nprovisioning:\n  diskSelector:\n"
        f"    match: 'disk.model.matches(\"({SECRET}\")'\n  minSize: 1GiB\n"
    )
    code = (
        "import sys; from volumed.config import check_config, compile_selector, DiskDescription\n"
        "print(check_config(open(sys.argv[1]).read())[1])\n"
        f"s = compile_selector('disk.model.matches(disk.serial + \"{SECRET}\")')\n"
        "try:\n    s.matches(DiskDescription(dev_path='/dev/sda', size=1, serial='('))\n"
        "except Exception as e:\n    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(config)], capture_output=True, text=True, check=True
    )
    assert "invalid regular expression at line 1, column 20" in result.stdout
    assert "disk selector: invalid regular expression" in result.stdout
    assert result.stderr == ""


def test_cel_python_logs_nothing_of_the_selector_at_debug_level(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config, issues = check_config(
        "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: u\nprovisioning:\n  diskSelector:\n"
        f"    match: 'disk.model == \"{SECRET}\"'\n  minSize: 1GiB\n"
    )
    assert issues == []
    assert config is not None
    compile_selector(f'disk.model == "{SECRET}"').matches(DISK)
    assert SECRET not in caplog.text
