"""Guest-side TPM helpers: the kernel's resource manager as the TCTI, PCR reads and extends, PCR 11 measured
as a signed UKI boot leaves it, and a root holding systemd-stub's ``/.extra`` files for the commands that
need them."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Final

from tests._uki import PHASES, stub_events
from volumed.keys.tpm import UKI_PCR, TPMConnection

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ._support import Scenario

TCTI: Final = "device:/dev/tpmrm0"
"""The kernel's TPM resource manager, as a node's init reaches its TPM."""

UKI_ROOT: Final = Path("/mnt")
"""Where :func:`uki_root` builds its root (a tmpfs over the host's /mnt, which nothing in the guest uses)."""


def require_tpm(scenario: Scenario) -> None:
    """Fail unless the guest kernel found the TPM (``/dev/tpm0`` and its resource manager ``/dev/tpmrm0``)."""
    for path in ("/dev/tpm0", "/dev/tpmrm0"):
        node = Path(path)
        scenario.check(node.exists() and stat.S_ISCHR(node.stat().st_mode), f"{path} is missing in the guest")


def read_pcr(index: int) -> str:
    """A PCR of the SHA-256 bank as hex, read through the project's TPM connection."""
    with TPMConnection(TCTI) as tpm:
        return tpm.read_pcrs((index,))[index].hex()


def read_pcr7() -> str:
    """PCR 7 (SHA-256 bank) as hex: what SeaBIOS measured (the SecureBoot state on a UEFI node)."""
    return read_pcr(7)


def extend(scenario: Scenario, index: int, event: bytes) -> None:
    """Measure ``event`` into a PCR (SHA-256 bank, extended with the event's SHA-256) with tpm2-tools, as
    firmware, systemd-stub and systemd-pcrphase do: not through the project's code."""
    scenario.run("tpm2_pcrextend", "-T", TCTI, f"{index}:sha256={hashlib.sha256(event).hexdigest()}")


def after_phase(pcr11: str, word: str) -> str:
    """PCR 11 (hex) after extending it with the phase ``word``: SHA-256(old || SHA-256(word)), by hand."""
    return hashlib.sha256(bytes.fromhex(pcr11) + hashlib.sha256(word.encode()).digest()).hexdigest()


def measure_uki_boot(scenario: Scenario, public_key: bytes, enter_machined: str) -> str:
    """PCR 11 as a signed UKI boot leaves it when the initrd is left: systemd-stub's measurements of the UKI
    (``tests/_uki.py``: each section's name with its NUL, then its content; the PCR-signing key last), then
    the initrd's phases ``enter-initrd`` and ``leave-initrd``. Checked against ``enter_machined``, PCR 11 at
    enter-machined as ``systemd-measure calculate`` computed it on the host. Returns PCR 11 (hex)."""
    scenario.check(read_pcr(UKI_PCR) == "00" * 32, f"PCR 11 holds {read_pcr(UKI_PCR)} before the UKI's")
    for event in stub_events(public_key):
        extend(scenario, UKI_PCR, event)
    *initrd_phases, machined = PHASES
    for word in initrd_phases:
        extend(scenario, UKI_PCR, word.encode())
    left_initrd = read_pcr(UKI_PCR)
    scenario.check(
        after_phase(left_initrd, machined) == enter_machined,
        f"PCR 11 {left_initrd} after leave-initrd does not lead to systemd-measure's {enter_machined}",
    )
    return left_initrd


@contextlib.contextmanager
def uki_root(scenario: Scenario, files: dict[Path, bytes]) -> Iterator[Path]:
    """A root for ``chroot``: the guest's own (every top-level directory bound recursively, symlinks copied)
    with ``files`` (absolute paths, e.g. systemd-stub's ``/.extra/...``) added; unmounted on leaving.

    The guest's root is the host's, read-only, and the UKI files must not appear on the host: its volumed
    tests rely on ``/.extra`` being absent.
    """
    scenario.run("mount", "-t", "tmpfs", "-o", "mode=0755", "uki-root", str(UKI_ROOT))
    try:
        bound = []
        for entry in sorted(os.scandir("/"), key=lambda entry: entry.name):
            target = UKI_ROOT / entry.name
            if entry.is_symlink():
                target.symlink_to(os.readlink(entry.path))
            elif entry.is_dir():
                target.mkdir()
                if entry.name != UKI_ROOT.name:
                    subprocess.run(["mount", "--rbind", entry.path, str(target)], check=True)
                    bound.append(entry.name)
        scenario.note(f"{UKI_ROOT}: the guest root's {', '.join(bound)} bound, symlinks copied")
        for path, data in files.items():
            placed = UKI_ROOT / path.relative_to("/")
            placed.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            placed.write_bytes(data)
            placed.chmod(0o644)
            scenario.note(f"{path}: {len(data)} bytes")
        yield UKI_ROOT
    finally:
        scenario.run("umount", "-R", str(UKI_ROOT), check=False)
