"""The unit and the drop-in in docs/systemd.md load in systemd (`systemd-analyze verify` on a copy, with the
installed volumed in ExecStart) without a warning, and their `volumed run` lines use options that exist."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click

from tests._tools import require_tool
from volumed.cli._main import volumed

DOCS = Path(__file__).resolve().parents[2] / "docs"
SYSTEMD = DOCS / "systemd.md"
VOLUMED = str(Path(sys.executable).parent / "volumed")
_INI = re.compile(r"```ini\n(?P<body>.*?)```", re.DOTALL)


def _unit_and_drop_in() -> tuple[str, str]:
    blocks = [block.group("body") for block in _INI.finditer(SYSTEMD.read_text(encoding="utf-8"))]
    assert len(blocks) == 2, f"docs/systemd.md should show one unit and one drop-in, not {len(blocks)} blocks"
    return blocks[0], blocks[1]


def _settings(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of every assignment, in order; anything else but blanks is an error."""
    section = ""
    settings: list[tuple[str, str, str]] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep == "=", f"not a key=value line: {line!r}"
        assert key.strip() == key != "", f"not a key=value line: {line!r}"
        settings.append((section, key, value))
    return settings


def _verify(tmp_path: Path, unit: str, drop_in: str) -> subprocess.CompletedProcess[str]:
    analyze = require_tool("systemd-analyze")
    (tmp_path / "volumed.service").write_text(unit.replace("/usr/bin/volumed", VOLUMED))
    (tmp_path / "volumed.service.d").mkdir(exist_ok=True)
    (tmp_path / "volumed.service.d" / "node.conf").write_text(drop_in.replace("/usr/bin/volumed", VOLUMED))
    return subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / "volumed.service")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_unit_and_its_drop_in_verify_cleanly(tmp_path: Path) -> None:
    unit, drop_in = _unit_and_drop_in()
    result = _verify(tmp_path, unit, drop_in)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # an unknown key is only a warning


def test_verify_sees_a_broken_copy(tmp_path: Path) -> None:
    """The check above proves something: a misspelt key in either file is reported."""
    unit, drop_in = _unit_and_drop_in()
    result = _verify(tmp_path, unit.replace("Type=notify", "Type=notifyy"), drop_in)
    assert "Failed to parse service type" in result.stderr, result.stderr
    result = _verify(tmp_path, unit, drop_in.replace("Environment=", "Environmentt="))
    assert "Unknown key 'Environmentt'" in result.stderr, result.stderr


def test_what_the_page_relies_on_is_in_the_unit() -> None:
    unit, drop_in = _unit_and_drop_in()
    settings = _settings(unit)
    assert ("Service", "Type", "notify") in settings
    assert ("Unit", "Before", "local-fs-pre.target") in settings
    assert ("Unit", "DefaultDependencies", "no") in settings
    exec_starts = [v for s, k, v in [*settings, *_settings(drop_in)] if k == "ExecStart"]
    assert exec_starts[1] == "", "a drop-in clears ExecStart before it gives a new one"
    run = volumed.get_command(click.Context(volumed), "run")
    assert run is not None
    options = {name for p in run.params if isinstance(p, click.Option) for name in p.opts}
    for line in (exec_starts[0], exec_starts[2]):
        words = shlex.split(line)
        assert words[:3] == ["/usr/bin/volumed", "run", "--notify"], line
        unknown = [w for w in words[2:] if w.startswith("-") and w not in options]
        assert not unknown, f"`volumed run` has no option {unknown} (docs/systemd.md)"
