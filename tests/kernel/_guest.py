"""The QEMU harness of the kernel tier: boot a guest on a disk image (and a swtpm), run one guest-side
scenario module in it, and hand its exit status, log and results back to pytest.

A :class:`KernelMachine` is one machine across reboots: one sparse disk image and, optionally, one swtpm state
dir. Each :meth:`KernelMachine.boot` starts QEMU (software emulation) with the host root shared read-only over
virtio-9p and a fresh writable work share (``/run/work`` in the guest) holding ``job.sh`` and
``params.json``; the guest's /init (``tests/kernel/initramfs/init``) chroots into the host root and runs
``python -m tests.kernel.guest.<scenario> /run/work/params.json`` from the project's ``.venv``. A guest still
running at the time limit is killed; :meth:`BootResult.check` then fails the test with the serial log.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, final

import pytest

from tests._swtpm import Swtpm
from tests._tools import require_tool
from tests.kernel.assets import REPO_ROOT
from volumed.storage import disklayout
from volumed.storage.gpt import new_table, write_partition_table

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.kernel.assets import KernelAssets

MIB: Final = 1024 * 1024
GUEST_WORK: Final = "/run/work"
"""Where the guest sees the boot's work share (inside the chroot)."""

MARKER: Final = "volumed-guest:"
DEFAULT_TIME_LIMIT: Final = 240.0
MEMORY_MIB: Final = 1024
CPUS: Final = 2
LOG_TAIL: Final = 12000

SESSION_BOOTS: list[BootResult] = []
"""Every boot of this test session, for the timing summary at the end of the run (conftest)."""

_JOB = """\
# Written by tests/kernel/_guest.py; run by the guest's /init inside the chroot (the host root).
cd {repo} || exit 126
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
exec {python} -m tests.kernel.guest.{scenario} {work}/params.json
"""


@final
@dataclass(frozen=True)
class BootResult:
    """What one boot produced.

    Attributes:
        scenario: the guest module that ran (``tests.kernel.guest.<scenario>``).
        exit_code: the scenario's status as the guest reported it (result file, else QEMU's debug-exit code);
            None when the guest reported nothing (killed, crashed before /init, ...).
        timed_out: the guest was still running at the time limit and was killed.
        serial_log: everything the guest wrote to its serial console (kernel, /init and the scenario).
        results: the JSON object the scenario wrote to ``/run/work/result.json`` (empty when none).
        boot_seconds: QEMU start to the chroot (the scenario starting), measured on the host.
        total_seconds: QEMU start to QEMU exit.
        log_path: the serial log on the host, kept for reading after the run.
    """

    scenario: str
    exit_code: int | None
    timed_out: bool
    serial_log: str
    results: dict[str, Any] = field(repr=False)
    boot_seconds: float | None
    total_seconds: float
    log_path: Path

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def describe(self) -> str:
        """Why the boot failed, with the end of the serial log (what pytest shows)."""
        if self.timed_out:
            what = f"was killed after {self.total_seconds:.0f} s (time limit): it hung"
        elif self.exit_code is None:
            what = "ended without reporting an exit status (it crashed or never reached the scenario)"
        else:
            what = f"exited with status {self.exit_code}"
        tail = self.serial_log[-LOG_TAIL:]
        cut = "" if len(tail) == len(self.serial_log) else "[... earlier lines cut ...]\n"
        return (
            f"kernel guest scenario {self.scenario!r} {what}.\n"
            f"serial log: {self.log_path}\n"
            f"----- guest serial console -----\n{cut}{tail}\n----- end of serial console -----"
        )

    def check(self) -> BootResult:
        """Return self if the scenario passed, else fail the test showing the guest's serial log."""
        if not self.ok:
            pytest.fail(self.describe(), pytrace=False)
        return self


@final
class KernelMachine:
    """One guest machine: a disk image and an optional TPM state that survive reboots.

    Args:
        assets: the kernel and initramfs.
        directory: where the disk image, the TPM state and each boot's files live.
        disk_size: size of the sparse disk image (Talos layout: META, STATE 100 MiB, EPHEMERAL the rest).
        tpm: attach a swtpm (started for each boot on the same state dir) as the guest's TPM.
        data_disk_size: also attach a second virtio disk (``/dev/vdb``) of this size, with an empty GPT, for
            volumes the config provisions on a non-system disk.
        blank_disk_size: also attach a blank virtio disk (no partition table) of this size, after the data
            disk (``/dev/vdc``, or ``/dev/vdb`` without one), for a whole-disk volume.
        extra_disks: disks on other buses, 64 MiB each with a GPT of one partition: ``nvme``, ``virtio-scsi``
            (WWN ``SCSI_WWN``), ``ahci`` (SATA), serials ``volumed-nvme``, ``volumed-vscsi``,
            ``volumed-ahci``; ``cdrom``: a 1 MiB disc in a CD drive on the AHCI controller (after ``ahci``).
        qmp: give QEMU a QMP monitor on the unix socket ``qmp_socket`` (in a short temporary directory: a
            socket's path is at most 107 bytes), for a test that changes the running machine (hot-plug).
    """

    def __init__(
        self,
        assets: KernelAssets,
        directory: Path,
        *,
        disk_size: int = 512 * MIB,
        tpm: bool = False,
        data_disk_size: int | None = None,
        blank_disk_size: int | None = None,
        extra_disks: tuple[str, ...] = (),
        qmp: bool = False,
    ) -> None:
        self.assets = assets
        self.qmp_socket = Path(tempfile.mkdtemp(prefix="volumed-qmp-")) / "qmp.sock" if qmp else None
        self.directory = directory
        self.disk = directory / "disk.img"
        self.data_disk = directory / "data.img" if data_disk_size is not None else None
        self.blank_disk = directory / "blank.img" if blank_disk_size is not None else None
        self.tpm_state = directory / "tpm" if tpm else None
        self.boots: list[BootResult] = []
        directory.mkdir(parents=True, exist_ok=True)
        if not self.disk.exists():
            disklayout.create_disk_image(self.disk, disk_size)
        if self.data_disk is not None and data_disk_size is not None and not self.data_disk.exists():
            with self.data_disk.open("wb") as image:
                image.truncate(data_disk_size)
            write_partition_table(self.data_disk, new_table(data_disk_size))
        if self.blank_disk is not None and blank_disk_size is not None and not self.blank_disk.exists():
            with self.blank_disk.open("wb") as image:
                image.truncate(blank_disk_size)
        self.extra_disks = {bus: directory / f"{bus}.img" for bus in extra_disks}
        for image_path in self.extra_disks.values():
            if not image_path.exists():
                with image_path.open("wb") as image:
                    image.truncate(MIB if image_path.stem == "cdrom" else 64 * MIB)
                if image_path.stem != "cdrom":
                    table, _ = new_table(64 * MIB).add_partition(size=32 * MIB, name="extra")
                    write_partition_table(image_path, table)

    def boot(
        self,
        scenario: str,
        params: dict[str, Any] | None = None,
        *,
        time_limit: float = DEFAULT_TIME_LIMIT,
        during: Callable[[Path], None] | None = None,
    ) -> BootResult:
        """Boot the guest once, run ``tests/kernel/guest/<scenario>.py`` in it, and return what happened.

        ``during(share)`` runs in a thread while QEMU runs (started before it), given the boot's work share
        (the guest's ``/run/work``): a test's side of a scenario that waits for the host (say, to hot-plug a
        disk through QMP). It must return by itself; it is waited for 10 s after QEMU exited.

        Never raises for a failing scenario: call :meth:`BootResult.check`.
        """
        qemu = require_tool("qemu-system-x86_64")
        number = len(self.boots) + 1
        boot_dir = self.directory / f"boot-{number}-{scenario}"
        share = boot_dir / "work"
        share.mkdir(parents=True)
        (share / "params.json").write_text(json.dumps(params or {}, indent=2))
        (share / "repo").write_text(str(REPO_ROOT))  # init re-exposes it when it lives under /tmp or /run
        (share / "job.sh").write_text(
            _JOB.format(
                repo=shlex.quote(str(REPO_ROOT)),
                python=shlex.quote(str(REPO_ROOT / ".venv" / "bin" / "python")),
                scenario=scenario,
                work=GUEST_WORK,
            )
        )
        log_path = boot_dir / "serial.log"
        swtpm = Swtpm.start_for_qemu(self.tpm_state) if self.tpm_state is not None else None
        helper = threading.Thread(target=during, args=(share,), name="during-boot", daemon=True)
        try:
            argv = [qemu, *self._qemu_args(share), *(swtpm.qemu_args() if swtpm else [])]
            if during is not None:
                helper.start()
            result = _run_qemu(argv, log_path, time_limit=time_limit)
        finally:
            if swtpm is not None:
                swtpm.stop()
            if helper.is_alive():
                helper.join(timeout=10)
        exit_code = _read_exit_code(share / "exit-code")
        if (
            exit_code is None
            and result.returncode is not None
            and result.returncode & 1
            and not result.killed
        ):
            exit_code = result.returncode >> 1  # isa-debug-exit: QEMU exits with status*2+1
        boot = BootResult(
            scenario=scenario,
            exit_code=exit_code,
            timed_out=result.killed,
            serial_log=log_path.read_text(errors="replace"),
            results=_read_results(share / "result.json"),
            boot_seconds=result.boot_seconds,
            total_seconds=result.total_seconds,
            log_path=log_path,
        )
        self.boots.append(boot)
        SESSION_BOOTS.append(boot)
        return boot

    def _qemu_args(self, share: Path) -> list[str]:
        return [
            "-accel",
            "tcg",
            "-cpu",
            "max",
            "-m",
            str(MEMORY_MIB),
            "-smp",
            str(CPUS),
            "-nodefaults",
            "-display",
            "none",
            "-serial",
            "stdio",
            "-no-reboot",
            "-kernel",
            str(self.assets.kernel),
            "-initrd",
            str(self.assets.initramfs),
            "-append",
            "console=ttyS0 panic=-1 quiet",
            "-drive",
            f"file={self.disk},if=virtio,format=raw,cache=unsafe",
            *(
                ["-drive", f"file={self.data_disk},if=virtio,format=raw,cache=unsafe"]
                if self.data_disk is not None
                else []
            ),
            *(
                ["-drive", f"file={self.blank_disk},if=virtio,format=raw,cache=unsafe"]
                if self.blank_disk is not None
                else []
            ),
            *(arg for bus, image in self.extra_disks.items() for arg in _extra_disk_args(bus, image)),
            "-virtfs",
            "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            "-virtfs",
            f"local,path={share},mount_tag=work,security_model=none",
            "-device",
            "virtio-rng-pci",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
            *(["-qmp", f"unix:{self.qmp_socket},server=on,wait=off"] if self.qmp_socket is not None else []),
        ]


SCSI_WWN: Final = "0x5000c50015ea71ac"


def _extra_disk_args(bus: str, image: Path) -> list[str]:
    """QEMU arguments of a disk on ``bus`` (nvme, virtio-scsi, ahci, cdrom)."""
    media = ",media=cdrom" if bus == "cdrom" else ""
    drive = ["-drive", f"file={image},if=none,id={bus}-drive,format=raw,cache=unsafe{media}"]
    devices = {
        "nvme": [
            "-device", "nvme,id=nvme-ctl,serial=volumed-nvme",
            "-device", "nvme-ns,drive=nvme-drive,bus=nvme-ctl,nsid=1",
        ],
        "virtio-scsi": [
            "-device", "virtio-scsi-pci,id=vscsi",
            "-device", f"scsi-hd,drive=virtio-scsi-drive,bus=vscsi.0,serial=volumed-vscsi,wwn={SCSI_WWN}",
        ],
        "ahci": [
            "-device", "ahci,id=ahci0",
            "-device", "ide-hd,drive=ahci-drive,bus=ahci0.0,serial=volumed-ahci",
        ],
        "cdrom": ["-device", "ide-cd,drive=cdrom-drive,bus=ahci0.1"],
    }  # fmt: skip
    return [*drive, *devices[bus]]


@final
@dataclass(frozen=True)
class _QemuRun:
    returncode: int | None
    killed: bool
    boot_seconds: float | None
    total_seconds: float


def _run_qemu(argv: list[str], log_path: Path, *, time_limit: float) -> _QemuRun:
    """Run QEMU with its serial console (stdout) copied to ``log_path``; kill it at ``time_limit``."""
    started = time.monotonic()
    chroot_at: list[float] = []
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    stream = process.stdout

    def copy() -> None:
        with log_path.open("wb") as log:
            for line in iter(stream.readline, b""):
                if not chroot_at and line.startswith(f"{MARKER} chroot".encode()):
                    chroot_at.append(time.monotonic() - started)
                log.write(line)
                log.flush()

    reader = threading.Thread(target=copy, name="qemu-serial", daemon=True)
    reader.start()
    killed = False
    try:
        process.wait(timeout=time_limit)
    except subprocess.TimeoutExpired:
        killed = True
        _kill(process)
    finally:
        if process.poll() is None:  # interrupted (Ctrl-C): never leave a guest behind
            _kill(process)
        reader.join(timeout=10)
        stream.close()
    total = time.monotonic() - started
    if killed:
        with log_path.open("a") as log:
            log.write(f"\n[harness: QEMU (pid {process.pid}) killed at the {time_limit:.0f} s time limit]\n")
    return _QemuRun(
        returncode=process.returncode,
        killed=killed,
        boot_seconds=chroot_at[0] if chroot_at else None,
        total_seconds=total,
    )


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL QEMU by its PID (it was started in its own session) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def _read_exit_code(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _read_results(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
