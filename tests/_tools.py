"""Required external tools: a test tier that needs one fails when it is missing; it never skips."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    """Return the path of ``name`` or fail the test with what to install (`make test` installs it)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/libexec")
    if path is None:
        pytest.fail(
            f"required tool {name!r} is missing: run `make system-deps` (scripts/install-system-deps.sh)"
        )
    return path


def require_root() -> None:
    """Fail (not skip) a system test that is not run as root."""
    if os.geteuid() != 0:
        pytest.fail("this tier needs root (loop devices, mount): run `make test` as root")
