"""volumed[testing] in a new project outside the repository: the docs' example test and the conformance suites
pass there with that extra alone installed, and no pytest configuration but an empty ``[pytest]``.

The venv is new, and volumed is installed from a copy of this tree (pip builds in the source directory, and
the repository is left alone); its dependencies come from the package registry as the machine is set up.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from volumed.runtime.testing.conformance import RuntimeConformance, StateConformance

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "runtime.md"
PACKAGE_DIRS = ("volumed", "runtime", "resources", "config", "storage", "keys", "controllers", "cli")
PROJECT_FILES = ("setup.py", "pyproject.toml", "README.md")
DEV_ONLY = ("pytest-timeout", "mypy", "trio", "blockbuster")


def doc_block(marker: str) -> str:
    """The python block between ``<!-- marker:start -->`` and ``<!-- marker:end -->`` in docs/runtime.md."""
    pattern = rf"<!-- {marker}:start -->\s*```python\n(?P<code>.*?)```\s*<!-- {marker}:end -->"
    match = re.search(pattern, DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert match, f"{DOC} lost its {marker} block"
    return match.group("code")


def clean_env() -> dict[str, str]:
    """This environment without anything that points Python at the repository's venv or tree."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a new venv holding ``volumed[testing]`` and nothing else."""
    base = tmp_path_factory.mktemp("testing-extra")
    source = base / "volumed-src"
    for name in PACKAGE_DIRS:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in PROJECT_FILES:
        shutil.copy2(ROOT / name, source / name)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=clean_env())
    interpreter = venv / "bin" / "python"
    install = subprocess.run(
        [str(interpreter), "-m", "pip", "install", "-q", f"{source}[testing]"],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=base,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    listed = subprocess.run(
        [str(interpreter), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    ).stdout.lower()
    assert "volumed==" in listed
    assert not [name for name in DEV_ONLY if f"{name}==" in listed], listed
    return interpreter


LOOP_SCOPE_WARNING = "asyncio_default_fixture_loop_scope"
"""What pytest-asyncio's warning about an unset default fixture loop scope names (the docs say so)."""

FIXTURE_TEST = """
import pytest

from volumed.runtime import Runtime, State
from test_mount_when_key_ready import APPS, MOUNTS, AppConfig, KeyStatus, KEYS, MountWhenKeyReady
from volumed.runtime import Resource
from volumed.runtime.testing import assert_resource


@pytest.mark.asyncio
async def test_with_the_fixtures(volumed_runtime: Runtime, volumed_state: State) -> None:
    volumed_runtime.register(MountWhenKeyReady())
    await volumed_state.create(Resource.new(APPS.namespace, APPS.type, "db", AppConfig(volume="v", key="k")))
    await volumed_state.create(Resource.new(KEYS.namespace, KEYS.type, "k", KeyStatus(ready=True)))
    await assert_resource(volumed_state, MOUNTS.pointer("db"), lambda r: r.spec.volume == "v")
"""


def run_project(python: Path, directory: Path, tests: dict[str, str], config: str = "[pytest]\n") -> str:
    """Lay a new project (``config`` as its pytest.ini, ``tests``), run pytest there: stdout and stderr."""
    directory.mkdir()
    (directory / "pytest.ini").write_text(config, encoding="utf-8")
    for name, code in tests.items():
        (directory / name).write_text(code, encoding="utf-8")
    result = subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        capture_output=True,
        text=True,
        cwd=directory,
        env=clean_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_the_docs_example_passes_in_a_new_project(python: Path, tmp_path: Path) -> None:
    output = run_project(python, tmp_path / "project", {"test_mount_when_key_ready.py": doc_block("example")})
    assert re.search(r"^1 passed\b", output, re.MULTILINE), output
    assert LOOP_SCOPE_WARNING in output


def test_the_docs_example_in_auto_mode_needs_no_mark(python: Path, tmp_path: Path) -> None:
    example = doc_block("example")
    assert "@pytest.mark.asyncio\n" in example
    config = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    tests = {"test_mount_when_key_ready.py": example.replace("@pytest.mark.asyncio\n", "")}
    output = run_project(python, tmp_path / "project", tests, config)
    assert re.search(r"^1 passed\b", output, re.MULTILINE), output
    assert LOOP_SCOPE_WARNING not in output


def test_the_plugin_fixtures_work_in_the_strict_mode(python: Path, tmp_path: Path) -> None:
    tests = {
        "conftest.py": 'pytest_plugins = ["volumed.runtime.testing.plugin"]\n',
        "test_mount_when_key_ready.py": doc_block("example"),
        "test_fixtures.py": FIXTURE_TEST,
    }
    output = run_project(python, tmp_path / "project", tests)
    assert re.search(r"^2 passed\b", output, re.MULTILINE), output


def test_the_docs_conformance_example_runs_both_suites_in_a_new_project(python: Path, tmp_path: Path) -> None:
    expected = sum(
        1
        for suite in (StateConformance, RuntimeConformance)
        for name in dir(suite)
        if name.startswith("test_")
    )
    output = run_project(python, tmp_path / "project", {"test_my_state.py": doc_block("conformance-example")})
    assert re.search(rf"^{expected} passed\b", output, re.MULTILINE), output
