"""Fixtures of the kernel tier: the guest's kernel and initramfs (fetched once per machine), and machines
(a disk image, optionally a swtpm state) to boot scenarios on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests._tools import require_root, require_tool
from tests.kernel._guest import KernelMachine
from tests.kernel.assets import AssetsError, KernelAssets, ensure_assets

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


@pytest.fixture(scope="session")
def kernel_assets() -> KernelAssets:
    """The guest kernel and initramfs; the tier FAILS (never skips) when they cannot be prepared."""
    require_root()
    for tool in ("qemu-system-x86_64", "apt-get", "dpkg-deb", "depmod", "modprobe"):
        require_tool(tool)
    try:
        return ensure_assets()
    except AssetsError as exc:
        pytest.fail(
            f"kernel tier: cannot prepare the guest kernel and initramfs: {exc}\n"
            "(the tier needs Debian's mirrors once per machine; then .cache/kernel/ is reused)",
            pytrace=False,
        )


@pytest.fixture
def machine(kernel_assets: KernelAssets, tmp_path: Path) -> Callable[..., KernelMachine]:
    """Make a guest machine under this test's tmp dir: ``machine(tpm=True)``."""

    def make(*, tpm: bool = False, name: str = "machine") -> KernelMachine:
        return KernelMachine(kernel_assets, tmp_path / name, tpm=tpm)

    return make
