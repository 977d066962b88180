"""Test-wide settings: hypothesis profiles and the tier markers by folder."""

from __future__ import annotations

import os
import resource
import types
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import structlog
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

if TYPE_CHECKING:
    from collections.abc import Iterator

_TIERS = {"interop", "system", "kernel"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier, taken from its folder (tests/interop/..., tests/system/...)."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in _TIERS & set(parts):
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """Commands run in-process (CliRunner) configure structlog globally; give every test the same start."""
    saved = structlog.get_config()
    yield
    structlog.reset_defaults()
    structlog.configure(**saved)


@pytest.fixture(autouse=True, scope="session")
def _keep_the_test_runner_dumpable() -> Iterator[None]:
    """Commands run in-process (CliRunner) would forbid core dumps of pytest itself, and a core limit of 0
    cannot be raised again (no CAP_SYS_RESOURCE): every process a later test starts would have it, and the
    tests that a real `volumed` process drops its own core limit would prove nothing. Those real processes
    (subprocesses) still harden themselves. Session-wide, so module fixtures that run commands are covered."""
    from volumed.storage.activation import _hardening

    # Patched below the exported function, so the package's exports stay what they are (test_exports).
    inert_resource = types.SimpleNamespace(RLIMIT_CORE=resource.RLIMIT_CORE, setrlimit=lambda *_: None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_hardening, "resource", inert_resource)
        patch.setattr(_hardening, "_libc", types.SimpleNamespace(prctl=lambda *_: 0))
        yield
