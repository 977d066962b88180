"""What `import volumed.controllers` costs a process (every `volumed run` pays it at boot, issue 16): the
optional libraries stay out of it, and its cost stays within a budget relative to `import pydantic` on the
same machine (a ratio of fresh interpreters' CPU time, so that the machine's speed and load count little)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

from tests._fresh_python import ROOT, run_python

# Measured on the 2-CPU test machine while other tests ran (fresh interpreters, the least CPU time of each of
# 11 runs): 10.2x before the lazy imports of issue 16 (rich through structlog, cel-python), 5.3x-6.0x after;
# the code grew to 8.1x here (9.2x in CI, which failed), and pydantic models built on first use
# (defer_build) brought it to 5.6x-5.9x; PyYAML, the config loader and the LUKS2 volume code imported on first
# use to 4.9x-5.05x (the least of 9 runs, 4 times; CI measured 14 % above this machine before).
# The least of several runs is the one least disturbed by the machine's load (medians of 5 ranged 5.2x-6.6x);
# the budget leaves 40 % on top of that and fails when the libraries taken out come back.
IMPORT_BUDGET = 7.2
RUNS = 9
# Loaded only on the paths that need them: tables (rich), selectors (cel-python with lark and pendulum),
# KMS keys (gRPC), TPM keys (tpm2-pytss), reading a config or salt file (PyYAML) and LUKS2 volumes
# (cryptography, through the payload cipher).
OPTIONAL = (
    "rich", "pygments", "celpy", "lark", "pendulum", "re2", "grpc", "google.protobuf", "tpm2_pytss", "yaml",
    "cryptography",
)  # fmt: skip


def cpu_seconds(code: str, *, write_bytecode: bool = False) -> float:
    """CPU time (user + system) of ``python -c code`` in a fresh interpreter."""
    env = dict(os.environ)
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def test_import_controllers_loads_no_optional_library() -> None:
    code = f"import sys, volumed.controllers; print(' '.join(m for m in {OPTIONAL!r} if m in sys.modules))"
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


def test_import_controllers_loads_no_activation_backend_nor_sqlite() -> None:
    """The activation backend is imported when chosen (a fuse run needs no dm code; `volumed run` still loads
    the FUSE client for its instance check), the sqlite state backend when used (f10cb15: -2.6 % of the
    import's instructions)."""
    heavy = ("volumed.storage.activation._dm", "volumed.storage.activation._fuse", "sqlite3")
    code = f"import sys, volumed.controllers; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


def test_structlog_leaves_rich_importable() -> None:
    """structlog is kept from rich only while it is imported; the tables import rich as usual."""
    code = "import volumed, structlog, sys; assert 'rich' not in sys.modules; import rich.table; print('ok')"
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_import_controllers_within_budget() -> None:
    # An installed image carries its bytecode; a checkout run with PYTHONDONTWRITEBYTECODE=1 (as CI is) would
    # compile every module in every run and measure the compiler (8.6x instead of 5.6x on a fresh clone).
    # bytecode written, files in the page cache
    cpu_seconds("import volumed.controllers", write_bytecode=True)
    controllers, pydantic = [], []
    for _ in range(RUNS):  # in turns, so that load on the machine falls on both alike
        controllers.append(cpu_seconds("import volumed.controllers"))
        pydantic.append(cpu_seconds("import pydantic"))
    ratio = min(controllers) / min(pydantic)
    assert ratio <= IMPORT_BUDGET, (
        f"import volumed.controllers takes {ratio:.1f}x the CPU time of import pydantic (budget"
        f" {IMPORT_BUDGET}x): `python -X importtime -c 'import volumed.controllers'` shows what it loads"
    )
