"""`volumed run`'s durations (--disk-poll-interval, --retry-interval, --timeout) refuse what is not a finite
number of seconds of at least 0.1, with exit 2 naming the option, before anything is done. nan, inf and
1e309 were accepted (click's FloatRange lets them through): every discovery failed and no disk was ever
found; 1e-320 rescanned back to back at 97 % of a CPU (review21 F3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from volumed.cli._main import volumed

if TYPE_CHECKING:
    from pathlib import Path

OPTIONS = ["--disk-poll-interval", "--retry-interval", "--timeout"]
REFUSED = ["nan", "NaN", "inf", "-inf", "1e309", "1e-320", "0.05", "0", "-1", "text", "", "0x10"]


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    """`volumed run --once` that, if it gets past its options, stops at once (exit 1) without touching a disk:
    its state directory would be under a regular file."""
    (tmp_path / "node.img").touch()
    (tmp_path / "file").touch()
    argv = ["run", "--disk", str(tmp_path / "node.img"), "--config", str(tmp_path / "config.yaml"), "--once"]
    argv += ["--state-dir", str(tmp_path / "file" / "state")]
    result = CliRunner().invoke(volumed, [*argv, *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("value", REFUSED)
def test_a_duration_that_is_not_finite_or_too_small_is_refused(
    tmp_path: Path, option: str, value: str
) -> None:
    code, output = run(tmp_path, option, value)
    assert code == 2, output
    assert f"Invalid value for '{option}': {value!r} is " in output
    assert "config file does not exist" not in output  # refused before anything was done


@pytest.mark.parametrize("option", OPTIONS)
def test_the_smallest_duration_accepted_is_0_1_seconds(tmp_path: Path, option: str) -> None:
    from volumed.cli.run import run as command

    parameter = next(p for p in command.params if p.name == option.lstrip("-").replace("-", "_"))
    assert parameter.type.convert("0.1", parameter, None) == 0.1
    assert parameter.type.convert("1e3", parameter, None) == 1000.0
