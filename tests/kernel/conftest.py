"""Fixtures of the kernel tier: the guest's kernel and initramfs (fetched once per machine), and machines
(a disk image, optionally a swtpm state) to boot scenarios on."""

from __future__ import annotations

import compileall
import re
import warnings
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_root, require_tool
from tests.kernel._guest import SESSION_BOOTS, KernelMachine
from tests.kernel.assets import REPO_ROOT, AssetsError, KernelAssets, ensure_assets

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


HOST_TOOLS = ("qemu-system-x86_64", "swtpm", "swtpm_ioctl", "apt-get", "dpkg-deb", "depmod", "modprobe")
"""What the host needs to fetch the kernel, build the initramfs and run the guest."""

GUEST_TOOLS = ("cryptsetup", "dmsetup", "mkfs.ext4", "mkfs.xfs", "tpm2_pcrextend", "tpm2_shutdown")
"""What the scenarios run inside the guest: the host's own binaries, through the chroot."""


@pytest.fixture(scope="session")
def kernel_assets() -> KernelAssets:
    """The guest kernel and initramfs; the tier FAILS (never skips) when they cannot be prepared."""
    require_root()
    for tool in HOST_TOOLS + GUEST_TOOLS:
        require_tool(tool)
    if not (REPO_ROOT / ".venv" / "bin" / "python").exists():
        pytest.fail(f"the guest runs {REPO_ROOT}/.venv/bin/python, which is missing: run `make venv`")
    compile_for_the_guest()
    try:
        return ensure_assets()
    except AssetsError as exc:
        pytest.fail(
            f"kernel tier: cannot prepare the guest kernel and initramfs: {exc}\n"
            "(the tier needs Debian's mirrors once per machine; then .cache/kernel/ is reused)",
            pytrace=False,
        )


def compile_for_the_guest() -> None:
    """Write the project's bytecode on the host: the guest sees the repository read-only (and runs with
    PYTHONDONTWRITEBYTECODE), so a module without a fresh .pyc is compiled again on every boot, under
    emulation. A file that does not compile is left to fail where it is imported."""
    skip = re.compile(r"/\.(venv|cache|git|typecheck)(/|$)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compileall.compile_dir(REPO_ROOT, quiet=2, rx=skip)


@pytest.fixture
def machine(kernel_assets: KernelAssets, tmp_path: Path) -> Callable[..., KernelMachine]:
    """Make a guest machine under this test's tmp dir: ``machine(tpm=True)``."""

    def make(*, tpm: bool = False, name: str = "machine") -> KernelMachine:
        return KernelMachine(kernel_assets, tmp_path / name, tpm=tpm)

    return make


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Each guest boot of the run: QEMU start to the scenario starting, and to QEMU's exit."""
    if not SESSION_BOOTS:
        return
    terminalreporter.section("kernel tier: guest boots")
    for boot in SESSION_BOOTS:
        to_scenario = f"{boot.boot_seconds:5.1f} s" if boot.boot_seconds is not None else "   -   "
        status = "killed (time limit)" if boot.timed_out else f"exit {boot.exit_code}"
        terminalreporter.write_line(
            f"{boot.scenario:<18} to scenario {to_scenario}   total {boot.total_seconds:5.1f} s   {status}"
        )
