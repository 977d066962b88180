"""A software TPM (swtpm) for tests: started on free TCP ports with its own state dir, rebooted, measured
into, and stopped cleanly.

Why "cleanly": killing swtpm without TPM2_Shutdown, after a DA-protected key was used, counts as a
dictionary-attack strike when it next starts, and three strikes put the TPM in lockout. :meth:`Swtpm.stop`
sends TPM2_Shutdown, then the control channel's shutdown (``swtpm_ioctl -s``), and kills the process by PID
only if it does not exit.

Two flavours:
    * :meth:`Swtpm.start` — TPM commands on TCP port P (TCTI ``swtpm:host=127.0.0.1,port=P``), control
      channel on P+1 (where libtss2's swtpm TCTI expects it). For host tests.
    * :meth:`Swtpm.start_for_qemu` — no command port; a UnixIO control socket for QEMU's
      ``-chardev socket,path=...`` + ``-tpmdev emulator``. The guest sends Startup/Shutdown itself;
      :meth:`stop` then only uses the control channel.

Usage::

    with Swtpm.start(tmp_path / "tpm") as tpm:
        tpm.pcr_extend(7, b"firmware: SecureBoot db")
        ... use tpm.tcti ...
        tpm.reboot()  # PCRs back to zero, seeds (and so the SRK) kept
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import time
from typing import TYPE_CHECKING, Any, Self, final

from tests._tools import require_tool

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from types import TracebackType

_HOST = "127.0.0.1"
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0


@final
class Swtpm:
    """One running swtpm process; see the module docstring. Build it with :meth:`start` or
    :meth:`start_for_qemu`."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        state_dir: Path,
        *,
        port: int | None,
        ctrl_port: int | None,
        ctrl_socket: Path | None,
    ) -> None:
        self._process = process
        self.state_dir = state_dir
        self.port = port
        self.ctrl_port = ctrl_port
        self.ctrl_socket = ctrl_socket

    # -- starting -------------------------------------------------------------------------------------------

    @classmethod
    def start(cls, state_dir: Path, *, attempts: int = 5) -> Swtpm:
        """Start swtpm with TPM commands on a free TCP port P and its control channel on P+1.

        The TPM is powered on and started (``startup-clear``); all PCRs are zero, as before firmware measured
        anything. ``state_dir`` keeps the TPM's seeds: a second start on the same dir is the same TPM.
        """
        swtpm = require_tool("swtpm")
        state_dir.mkdir(parents=True, exist_ok=True)
        last_error = ""
        for _ in range(attempts):
            port = _free_port_pair()
            process = _spawn(
                [
                    swtpm,
                    "socket",
                    "--tpm2",
                    "--server",
                    f"type=tcp,port={port},bindaddr={_HOST}",
                    "--ctrl",
                    f"type=tcp,port={port + 1},bindaddr={_HOST}",
                    "--tpmstate",
                    f"dir={state_dir}",
                    "--flags",
                    "not-need-init,startup-clear",
                ],
                state_dir,
            )
            instance = cls(process, state_dir, port=port, ctrl_port=port + 1, ctrl_socket=None)
            try:
                instance._wait_listening(port)
            except RuntimeError as exc:  # port taken between probing and binding: try another pair
                last_error = str(exc)
                instance._kill()
                continue
            return instance
        raise RuntimeError(f"swtpm did not start after {attempts} attempts: {last_error}")

    @classmethod
    def start_for_qemu(cls, state_dir: Path) -> Swtpm:
        """Start swtpm with a UnixIO control socket at ``state_dir/swtpm.sock`` for QEMU's TPM emulator
        backend (see :meth:`qemu_args`). The guest's firmware/kernel sends TPM2_Startup itself."""
        swtpm = require_tool("swtpm")
        state_dir.mkdir(parents=True, exist_ok=True)
        ctrl_socket = state_dir / "swtpm.sock"
        with contextlib.suppress(FileNotFoundError):
            ctrl_socket.unlink()
        process = _spawn(
            [
                swtpm,
                "socket",
                "--tpm2",
                "--ctrl",
                f"type=unixio,path={ctrl_socket}",
                "--tpmstate",
                f"dir={state_dir}",
                "--flags",
                "startup-clear",
            ],
            state_dir,
        )
        instance = cls(process, state_dir, port=None, ctrl_port=None, ctrl_socket=ctrl_socket)
        deadline = time.monotonic() + _START_TIMEOUT
        while not ctrl_socket.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                instance._kill()
                raise RuntimeError(f"swtpm did not create {ctrl_socket}: {instance.log_tail()}")
            time.sleep(0.01)
        return instance

    # -- what tests use -------------------------------------------------------------------------------------

    @property
    def tcti(self) -> str:
        """TCTI configuration string for tpm2-pytss / tpm2-tools (``-T``)."""
        if self.port is None:
            raise RuntimeError("this swtpm was started for QEMU: it has no TCP command port")
        return f"swtpm:host={_HOST},port={self.port}"

    @property
    def pid(self) -> int:
        """The swtpm process id."""
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the swtpm process is still alive."""
        return self._process.poll() is None

    def qemu_args(self) -> list[str]:
        """QEMU arguments attaching this swtpm as a TIS TPM (``/dev/tpm0``, ``/dev/tpmrm0`` in the guest)."""
        if self.ctrl_socket is None:
            raise RuntimeError("this swtpm was started for TCP clients; use Swtpm.start_for_qemu")
        return [
            "-chardev",
            f"socket,id=chrtpm,path={self.ctrl_socket}",
            "-tpmdev",
            "emulator,id=tpm0,chardev=chrtpm",
            "-device",
            "tpm-tis,tpmdev=tpm0",
        ]

    @contextlib.contextmanager
    def esapi(self) -> Iterator[Any]:
        """An ESAPI context on this TPM, closed on exit (flush your own transient handles)."""
        from tpm2_pytss import ESAPI

        context = ESAPI(self.tcti)
        try:
            yield context
        finally:
            context.close()

    def pcr_extend(self, pcr: int, event: bytes) -> bytes:
        """Measure ``event`` into ``pcr`` of the SHA-256 bank (extend with SHA-256(event)), as firmware does;
        return the new PCR value."""
        from tpm2_pytss import ESYS_TR, TPM2_ALG, TPML_DIGEST_VALUES, TPMT_HA, TPMU_HA

        digest = TPMT_HA(hashAlg=TPM2_ALG.SHA256, digest=TPMU_HA(sha256=hashlib.sha256(event).digest()))
        with self.esapi() as esapi:
            esapi.pcr_extend(getattr(ESYS_TR, f"PCR{pcr}"), TPML_DIGEST_VALUES([digest]))
        return self.pcr_read(pcr)

    def pcr_read(self, pcr: int) -> bytes:
        """The SHA-256 value of ``pcr``."""
        from tpm2_pytss import TPML_PCR_SELECTION

        with self.esapi() as esapi:
            _, _, digests = esapi.pcr_read(TPML_PCR_SELECTION.parse(f"sha256:{pcr}"))
        return bytes(digests[0])

    def reboot(self) -> None:
        """Power-cycle the TPM without restarting swtpm: TPM2_Shutdown(CLEAR), TPM_Init over the control
        channel, TPM2_Startup(CLEAR). PCRs go back to zero; seeds (hence the SRK) stay."""
        from tpm2_pytss import TPM2_SU

        with self.esapi() as esapi:
            esapi.shutdown(TPM2_SU.CLEAR)
        self._ioctl("-i")
        with self.esapi() as esapi:
            esapi.startup(TPM2_SU.CLEAR)

    def handle_count(self, handle_type: int = 0x80) -> int:
        """How many handles of ``handle_type`` (0x80 transient objects, 0x02/0x03 sessions) the TPM holds:
        tests assert nothing was leaked."""
        from tpm2_pytss import TPM2_CAP

        with self.esapi() as esapi:
            _, data = esapi.get_capability(TPM2_CAP.HANDLES, handle_type << 24, 64)
        return len(data.data.handles)

    # -- stopping -------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop cleanly: TPM2_Shutdown (TCP flavour), control-channel shutdown, wait; kill by PID if stuck."""
        if not self.running:
            return
        if self.port is not None:
            with contextlib.suppress(Exception):  # a TPM not started cannot shut down; stop it anyway
                from tpm2_pytss import TPM2_SU

                with self.esapi() as esapi:
                    esapi.shutdown(TPM2_SU.CLEAR)
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._ioctl("-s")
        try:
            self._process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def log_tail(self, limit: int = 2000) -> str:
        """The end of swtpm's own output (for failure messages)."""
        try:
            return (self.state_dir / "swtpm.log").read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    # -- internals ------------------------------------------------------------------------------------------

    def _ioctl(self, command: str) -> None:
        ioctl = require_tool("swtpm_ioctl")
        target = (
            ["--tcp", f"{_HOST}:{self.ctrl_port}"]
            if self.ctrl_socket is None
            else ["--unix", str(self.ctrl_socket)]
        )
        result = subprocess.run(
            [ioctl, *target, command], capture_output=True, timeout=_STOP_TIMEOUT, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"swtpm_ioctl {command} failed: {result.stderr.decode(errors='replace').strip()}"
            )

    def _wait_listening(self, port: int) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"swtpm exited with {self._process.returncode}: {self.log_tail()}")
            with socket.socket() as probe:
                probe.settimeout(0.2)
                if probe.connect_ex((_HOST, port)) == 0:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"swtpm did not listen on {_HOST}:{port} within {_START_TIMEOUT} s")
            time.sleep(0.01)

    def _kill(self) -> None:
        """Last resort: SIGTERM, then SIGKILL, by PID; always reaps the process."""
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=5)


def _spawn(argv: list[str], state_dir: Path) -> subprocess.Popen[bytes]:
    log = (state_dir / "swtpm.log").open("ab")
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def _free_port_pair() -> int:
    """A port P such that P and P+1 are both free on the loopback (checked by binding, then released)."""
    for _ in range(100):
        with socket.socket() as first:
            first.bind((_HOST, 0))
            port = int(first.getsockname()[1])
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind((_HOST, port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no two consecutive free TCP ports on the loopback")
