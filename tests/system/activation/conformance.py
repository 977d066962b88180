"""The Activator contract, as one reusable check: run it against every backend (fuse here, dm in the QEMU
kernel tier: ``from tests.system.activation.conformance import check_lifecycle``).
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import pytest

from volumed.storage.activation import ActivationBusyError, Activator, DataSegment

if TYPE_CHECKING:
    from pathlib import Path


def _run(*argv: str | Path) -> None:
    result = subprocess.run([str(arg) for arg in argv], capture_output=True, check=False)
    assert result.returncode == 0, f"{argv}: {result.stderr.decode(errors='replace')}"


def check_lifecycle(
    activator: Activator, name: str, segment: DataSegment, volume_key: bytes, workdir: Path, *, size: int
) -> bytes:
    """Activate, mkfs.ext4, mount, write, refuse to deactivate while mounted, re-activate while active (same
    device), deactivate, activate again, read back, deactivate. Returns what it wrote to ``/file.bin``.

    Unmounts whatever it mounted even when a check fails; deactivation on failure is the caller's fixture's.
    """
    target = workdir / f"mnt-{name}"
    target.mkdir(exist_ok=True)
    mounted = False
    try:
        device = activator.activate(name, segment, volume_key)
        assert activator.is_active(name)
        status = activator.status(name)
        assert status.active
        assert status.device == device
        assert status.size == size
        assert status.problem is None
        sys_name = os.path.basename(os.path.realpath(device))
        with open(f"/sys/block/{sys_name}/queue/logical_block_size", encoding="ascii") as block_size:
            assert int(block_size.read()) == segment.sector_size

        _run("mkfs.ext4", "-q", "-F", "-L", "conformance", device)
        _run("mount", device, target)
        mounted = True
        payload = os.urandom(3 * (1 << 20) + 123)
        (target / "file.bin").write_bytes(payload)
        with pytest.raises(ActivationBusyError, match="in use"):
            activator.deactivate(name)
        _run("umount", target)
        mounted = False

        assert activator.activate(name, segment, volume_key) == device
        activator.deactivate(name)
        assert not activator.is_active(name)
        assert activator.status(name).device is None
        activator.deactivate(name)  # absent is fine

        device = activator.activate(name, segment, volume_key)
        _run("mount", device, target)
        mounted = True
        assert (target / "file.bin").read_bytes() == payload
        _run("umount", target)
        mounted = False
        activator.deactivate(name)
        return payload
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)
