"""The ``fuse`` backend: a FUSE server process decrypts the segment into one file, a loop device sits on top.

Layout under ``runtime_dir`` (default ``/run/volumed/fuse``) for mapping ``NAME``:
``NAME/`` the FUSE mount point holding the decrypted file ``NAME/NAME``; ``NAME.json`` what was activated
(PID, devices, segment; never the key); ``NAME.log`` the server's stderr.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import logging
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, final

from volumed.storage import loop
from volumed.storage.blockdev import BlockDeviceError, DataIdentity, data_identity

from ._capacity import refresh_loop_capacity
from ._ciphers import cipher_problem
from ._errors import ActivationBusyError, ActivationConflictError, ActivationError
from ._model import ActivationStatus, BackendName, DataSegment, check_flags, check_name
from ._process import in_use, is_mount_point, mounts_of_device, process_cmdline, stop_process, umount

if TYPE_CHECKING:
    from collections.abc import Iterable

DEFAULT_RUNTIME_DIR: Final = Path("/run/volumed/fuse")
SERVER_MODULE: Final = "volumed.storage.activation._fuse_server"
READY_TIMEOUT: Final = 30.0

log = logging.getLogger(__name__)


def segment_size(segment: DataSegment) -> int:
    """The segment size in bytes, resolving "dynamic" (None) to the end of the device."""
    if segment.size is not None:
        return segment.size
    try:
        with open(segment.device, "rb") as device:
            end = device.seek(0, os.SEEK_END)
    except OSError as exc:
        raise ActivationError(f"cannot size {segment.device}: {exc.strerror}") from exc
    size = end - segment.offset
    size -= size % segment.sector_size
    if size <= 0:
        raise ActivationError(f"{segment.device} ends before its data segment at offset {segment.offset}")
    return size


@final
class FuseActivator:
    """Activation through FUSE + loop, for kernels without device-mapper (containers, CI, this machine).

    Args:
        runtime_dir: where mount points, state files and server logs live (a tmpfs such as /run).
        python: interpreter that runs the server (default: this one, so the same venv).
    """

    def __init__(
        self, *, runtime_dir: str | os.PathLike[str] = DEFAULT_RUNTIME_DIR, python: str | None = None
    ):
        self._runtime_dir = Path(runtime_dir)
        self._python = python or sys.executable

    def __repr__(self) -> str:
        return f"FuseActivator(runtime_dir={str(self._runtime_dir)!r})"

    @property
    def backend(self) -> BackendName:
        return "fuse"

    # paths

    def mountpoint(self, name: str) -> Path:
        """The FUSE mount point of mapping ``name``."""
        return self._runtime_dir / check_name(name)

    def decrypted_file(self, name: str) -> Path:
        """The decrypted file that the loop device of mapping ``name`` is attached to."""
        return self.mountpoint(name) / name

    def _state_file(self, name: str) -> Path:
        return self._runtime_dir / f"{check_name(name)}.json"

    def _log_file(self, name: str) -> Path:
        return self._runtime_dir / f"{check_name(name)}.log"

    def _read_state(self, name: str) -> dict[str, object] | None:
        try:
            state: dict[str, object] = json.loads(self._state_file(name).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return state

    def _write_state(self, name: str, state: dict[str, object]) -> None:
        path = self._state_file(name)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(state), encoding="utf-8")
        os.replace(temporary, path)

    # Activator

    def activate(
        self, name: str, segment: DataSegment, volume_key: bytes, *, flags: Iterable[str] = ()
    ) -> str:
        """Serve ``segment``; dm-crypt ``flags`` cannot be honoured here: they are recorded (``status``
        shows them as ``ignored_flags``) and logged."""
        check_name(name)
        problem = cipher_problem("fuse", segment.cipher)
        if problem is not None:  # before any server, mount or loop device exists
            raise ActivationError(f"cannot activate {name}: {problem}")
        ignored = check_flags(flags)
        size = segment_size(segment)
        current = self.status(name)
        if current.active and current.device is not None:
            if (current.source, current.offset, current.size) != (
                os.path.realpath(segment.device),
                segment.offset,
                size,
            ):
                raise ActivationConflictError(
                    f"{name} is already active for {current.source} at offset {current.offset} "
                    f"({current.size} bytes), not {segment.device} at offset {segment.offset}"
                )
            return current.device
        self._clean_up(name)
        pid = self._start_server(name, segment, size, volume_key)
        state: dict[str, object] = {
            "name": name,
            "backend": "fuse",
            "pid": pid,
            "loop": None,
            "source": os.path.realpath(segment.device),
            "offset": segment.offset,
            "size": size,
            "sector_size": segment.sector_size,
            "ignored_flags": list(ignored),
        }
        if ignored:
            log.warning(
                "%s: the fuse backend cannot honour dm-crypt flag(s) %s; activated without them",
                name,
                ", ".join(ignored),
            )
        self._write_state(name, state)  # before the loop, so a crash in between still leaves the PID
        try:
            device = loop.attach(self.decrypted_file(name), block_size=segment.sector_size)
        except (OSError, ActivationError) as exc:
            self._clean_up(name, pid=pid)
            raise ActivationError(
                f"cannot attach a loop device to {self.decrypted_file(name)}: {exc}"
            ) from exc
        self._write_state(name, state | {"loop": device.path})
        return device.path

    def resize(self, name: str, segment: DataSegment, volume_key: bytes) -> int:
        """Make active mapping ``name`` as large as ``segment`` now is; return its size in bytes.

        The server already holds the key (``volume_key`` is not used): growing its decrypted file (a
        truncate, which the server checks against the device) makes it serve the new size, then the loop
        device is told. Growing only: a smaller segment raises, nothing changed.
        """
        check_name(name)
        size = segment_size(segment)
        current = self.status(name)
        if not current.active or current.size is None:
            raise ActivationError(
                f"cannot resize {name}: it is not active ({current.problem or 'no mapping'})"
            )
        if (current.source, current.offset) != (os.path.realpath(segment.device), segment.offset):
            raise ActivationConflictError(
                f"{name} is active for {current.source} at offset {current.offset}, not {segment.device} at "
                f"offset {segment.offset}"
            )
        if size < current.size:
            raise ActivationError(
                f"cannot resize {name}: its segment is {size} bytes, smaller than the {current.size} served"
            )
        if size > current.size:
            try:
                os.truncate(self.decrypted_file(name), size)
            except OSError as exc:
                raise ActivationError(
                    f"the FUSE server of {name} refused to grow to {size} bytes: {exc.strerror}"
                ) from exc
            self._write_state(name, (self._read_state(name) or {}) | {"size": size})
        for device in self._loops(name):
            refresh_loop_capacity(device.path)
        return size

    def deactivate(self, name: str) -> None:
        check_name(name)
        for device in self._loops(name):
            if in_use(device.path):
                raise ActivationBusyError(f"{name}: {device.path} is in use (mounted?); unmount it first")
        self._clean_up(name)

    def is_active(self, name: str) -> bool:
        return self.status(name).active

    def status(self, name: str) -> ActivationStatus:
        check_name(name)
        state = self._read_state(name) or {}
        loops = self._loops(name)
        pid = state.get("pid")
        server_alive = isinstance(pid, int) and self._is_server(pid, name)
        mounted = is_mount_point(str(self.mountpoint(name)))
        problem = None
        if state or loops or mounted:
            if not server_alive:
                problem = "the FUSE server is not running"
            elif not mounted:
                problem = f"{self.mountpoint(name)} is not mounted"
            elif not loops:
                problem = f"no loop device is attached to {self.decrypted_file(name)}"
        active = server_alive and mounted and bool(loops)
        return ActivationStatus(
            name=name,
            backend="fuse",
            active=active,
            device=loops[0].path if loops else None,
            source=_str_or_none(state.get("source")),
            offset=_int_or_none(state.get("offset")),
            size=_int_or_none(state.get("size")),
            problem=problem,
            ignored_flags=_flags(state.get("ignored_flags")),
        )

    # internals

    def _is_server(self, pid: int, name: str) -> bool:
        argv = process_cmdline(pid)
        return argv is not None and SERVER_MODULE in argv and name in argv

    def _loops(self, name: str) -> list[loop.LoopDevice]:
        target = str(self.decrypted_file(name))
        return [device for device in loop.list_loop_devices() if device.backing_file == target]

    def _start_server(self, name: str, segment: DataSegment, size: int, volume_key: bytes) -> int:
        mountpoint = self.mountpoint(name)
        mountpoint.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_read, key_write = os.pipe()
        ready_read, ready_write = os.pipe()
        argv = [
            self._python, "-m", SERVER_MODULE,
            "--name", name, "--mountpoint", str(mountpoint), "--device", os.path.realpath(segment.device),
            "--offset", str(segment.offset), "--size", str(size), "--sector-size", str(segment.sector_size),
            "--iv-tweak", str(segment.iv_tweak), "--cipher", segment.cipher,
            "--key-fd", str(key_read), "--ready-fd", str(ready_write),
        ]  # fmt: skip
        try:
            with open(self._log_file(name), "ab") as log:
                process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    pass_fds=(key_read, ready_write),
                    start_new_session=True,
                    cwd="/",
                )
        except OSError as exc:
            for fd in (key_read, key_write, ready_read, ready_write):
                os.close(fd)
            raise ActivationError(f"cannot start the FUSE server for {name}: {exc.strerror}") from exc
        os.close(key_read)
        os.close(ready_write)
        try:
            os.write(key_write, volume_key)
        finally:
            os.close(key_write)
        try:
            answer = _read_line(ready_read, READY_TIMEOUT)
        finally:
            os.close(ready_read)
        if answer != "ready":
            self._clean_up(name, pid=process.pid)
            process.wait(timeout=5)
            why = answer or f"no answer within {READY_TIMEOUT:.0f} s"
            raise ActivationError(f"the FUSE server for {name} did not start: {why}{self._log_tail(name)}")
        # The server lives on in its own session; forget the Popen so no one waits on it by accident.
        process.returncode = 0
        return process.pid

    def _log_tail(self, name: str) -> str:
        try:
            tail = self._log_file(name).read_text(encoding="utf-8", errors="replace").strip()[-800:]
        except FileNotFoundError:
            return ""
        return f" (server log: {tail})" if tail else ""

    def _clean_up(self, name: str, *, pid: int | None = None) -> None:
        """Detach loops, unmount, stop the server: whatever of a (half-made or dead) activation is left."""
        for device in self._loops(name):
            with contextlib.suppress(loop.LoopError):
                loop.detach(device)
        mountpoint = str(self.mountpoint(name))
        if is_mount_point(mountpoint) and umount(mountpoint) != 0:
            umount(mountpoint, lazy=True)
        state = self._read_state(name) or {}
        for candidate in {pid, state.get("pid")}:
            if isinstance(candidate, int):
                stop_process(candidate, is_ours=[SERVER_MODULE, name])
        self._state_file(name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            os.rmdir(mountpoint)

    def leftovers(self) -> list[str]:
        """The mappings with anything in the runtime directory: a state file, a mount point, a FUSE mount."""
        names: set[str] = set()
        try:
            entries = list(os.scandir(self._runtime_dir))
        except FileNotFoundError:
            return []
        for entry in entries:
            name = entry.name.removesuffix(".json")
            if entry.name.endswith((".log", ".json.tmp")):
                continue
            try:
                names.add(check_name(name))
            except ActivationError:
                continue
        return sorted(names)

    def release(self, name: str) -> None:
        """Tear down mapping ``name`` even where filesystems are mounted from it: they are unmounted first.

        For what a killed process left behind and no one took over (a volume that then failed to open): its
        FUSE view, loop device and mounts would stay until reboot.

        Raises:
            ActivationBusyError: a filesystem on it cannot be unmounted (in use); nothing else is torn down.
        """
        check_name(name)
        for device in self._loops(name):
            for target in mounts_of_device(device.path):
                error = umount(target)
                if error not in (0, errno.EINVAL):
                    raise ActivationBusyError(
                        f"{name}: {target} (on {device.path}) cannot be unmounted: {os.strerror(error)}"
                    )
        self.deactivate(name)

    def remove_logs(self, name: str) -> None:
        """Delete the server log of mapping ``name`` (kept after deactivation for post-mortems)."""
        self._log_file(name).unlink(missing_ok=True)


@dataclass(frozen=True)
class FuseServerUse:
    """A live FUSE server that decrypts part of a file: which mapping, which process, which bytes."""

    name: str
    pid: int
    offset: int
    size: int
    mountpoint: str = ""


def fuse_servers_over(
    path: str | os.PathLike[str], offset: int = 0, size: int | None = None
) -> list[FuseServerUse]:
    """The live FUSE servers whose data segment overlaps ``size`` bytes of ``path`` at ``offset`` (None: to
    the end).

    Such a server holds the file open without an exclusive lock (an image file cannot be locked the way a
    block device is), so a tool about to overwrite that range must ask here. Found by the servers' argv in
    /proc, wherever their runtime directory is, and compared by device and inode, not by name.
    """
    target = _identity(path)
    if target is None:
        return []
    start_at = target.offset + offset
    end = None if size is None else start_at + size
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        argv = process_cmdline(int(entry.name))
        if argv is None or SERVER_MODULE not in argv:
            continue
        options = _server_options(argv)
        try:
            device, start, length = options["--device"], int(options["--offset"]), int(options["--size"])
        except (KeyError, ValueError):
            continue
        length = max(length, _resized_size(options.get("--mountpoint", "")))
        served = _identity(device) or _open_file_identity(int(entry.name), target.key)
        if served is None or served.key != target.key:  # a hard link, a bind mount, a loop device: the same
            continue
        first = served.offset + start
        if first + length > start_at and (end is None or first < end):
            found.append(
                FuseServerUse(
                    options.get("--name", "?"),
                    int(entry.name),
                    start,
                    length,
                    options.get("--mountpoint", ""),
                )
            )
    return found


def _identity(path: str | os.PathLike[str]) -> DataIdentity | None:
    """Which bytes ``path`` is (a loop device counts as the file the kernel says it maps); None if gone.

    A loop device whose file cannot be told counts as every file: the caller is about to write, and must not
    guess that it is safe.
    """
    try:
        return data_identity(path)
    except BlockDeviceError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def _open_file_identity(pid: int, key: str) -> DataIdentity | None:
    """A server whose ``--device`` name is gone (unlinked, another mount namespace's) still has the file open:
    the identity of the file among its descriptors that is ``key``, if any."""
    with contextlib.suppress(OSError):
        for fd in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError, BlockDeviceError):
                found = data_identity(fd.path)
                if found.key == key:
                    return DataIdentity(found.key, 0)
    return None


def _resized_size(mountpoint: str) -> int:
    """The size a resize gave the server of ``mountpoint`` (in its state file ``<mountpoint>.json``), or 0:
    the server's argv still says the size it started with."""
    if not mountpoint:
        return 0
    try:
        size = json.loads(Path(mountpoint + ".json").read_text(encoding="utf-8")).get("size")
    except (OSError, ValueError, AttributeError):
        return 0
    return size if isinstance(size, int) else 0


def _server_options(argv: list[str]) -> dict[str, str]:
    return {flag: value for flag, value in itertools.pairwise(argv) if flag.startswith("--")}


def _read_line(fd: int, timeout: float) -> str:
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def _flags(value: object) -> tuple[str, ...]:
    return tuple(flag for flag in value if isinstance(flag, str)) if isinstance(value, list) else ()


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None


__all__ = ["DEFAULT_RUNTIME_DIR", "FuseActivator", "FuseServerUse", "fuse_servers_over", "segment_size"]
