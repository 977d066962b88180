"""The FUSE server is a process of its own, started at boot (one for every volume, or one per volume): it
imports what it uses."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["_fuse_server", "_fuse_host"])
def test_the_fuse_server_imports_neither_kdfs_nor_other_backends_nor_package_metadata(module: str) -> None:
    probe = f"import sys, volumed.storage.activation.{module}; print('\\n'.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", probe], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    assert "volumed.storage.luks2.payload" in loaded  # what it serves with
    for heavy in (
        "volumed.storage.luks2._kdf",
        "volumed.storage.luks2._volume",
        "volumed.storage.activation._dm",
        "volumed.storage.activation._auto",
        "importlib.metadata",
    ):
        assert heavy not in loaded, heavy
