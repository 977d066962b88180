"""The ``fuse`` backend: a FUSE server process decrypts the segment into one file, a loop device sits on top.

Layout under ``runtime_dir`` (default ``/run/volumed/fuse``) for mapping ``NAME``:
``NAME/`` the FUSE mount point holding the decrypted file ``NAME/NAME``; ``NAME.json`` what was activated
(the server's PID, devices, segment; never the key).

One server process serves every volume of the runtime directory (``shared=True``, _fuse_host): the first
activation starts it, later ones (from this process or a later volumed) hand it their volume through its
control socket ``.fuse-host.sock`` (root only; the key goes that way, the device as a descriptor); its
stderr is ``.fuse-host.log``, and ``.fuse-host.lock`` keeps a volume from being handed to a host on its way
out. With ``shared=False`` each volume gets a server process of its own (key through an inherited pipe,
stderr in ``NAME.log``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
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
from ._fuse_channel import ChannelError, request
from ._fuse_control import LOCK_NAME, LOG_NAME, SOCKET_NAME, AddRequest, ControlError, served_list
from ._model import DEFAULT_RUNTIME_DIR, ActivationStatus, BackendName, DataSegment, check_flags, check_name
from ._process import _unescape as unescape_mountinfo
from ._process import in_use, mounts_of_device, process_cmdline, stop_process, umount

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

SERVER_MODULE: Final = "volumed.storage.activation._fuse_server"
READY_TIMEOUT: Final = 30.0
QUERY_TIMEOUT: Final = 2.0
"""How long status() waits for the shared server's answer; none in time means "cannot tell", never "dead"
(a server stalled by swap or CPU starvation answers later, and its volumes are in use meanwhile)."""
SHARED_SERVER: Final = True
"""Whether a FuseActivator hands every volume to one server process by default (else one per volume)."""

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


def loops_backed_by(target: str, *, sys_block: Path = Path("/sys/block")) -> list[loop.LoopDevice]:
    """The loop devices attached to the file ``target`` (as the kernel names it, `` (deleted)`` or not: a dead
    FUSE mount's entry for the file is dropped once anything looks it up), by number.

    Of every other loop device only ``loop/backing_file`` is read: each status check of a volume looks its
    loop devices up, and reading every attribute of every loop device of the machine (114 on a shared test
    machine: 23 ms a look, 68 looks in a boot of 10 volumes) was half of `bench/boot.py`'s boot. Each one
    is opened relative to a descriptor of ``sys_block`` by a plain string: building three `Path` objects a
    device took most of a look's time (134 loop devices: 4 ms against 1 ms).
    """
    try:
        directory = os.open(sys_block, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    try:
        names = os.listdir(directory)
        wanted = target.encode("utf-8", errors="surrogateescape")
        named = (wanted, wanted + b" (deleted)")  # deleted: a dead FUSE mount's entry for it was dropped
        matching = [name for name in names if _backing_file(directory, name) in named]
    finally:
        os.close(directory)
    found: list[loop.LoopDevice] = []
    for name in matching:
        device = loop.read_loop_device(name, sys_block=sys_block)
        if device is not None and device.backing_name == target:
            found.append(device)
    return sorted(found, key=lambda device: device.number)


def _backing_file(sys_block: int, name: str) -> bytes | None:
    """``loop/backing_file`` of block device ``name`` (in the directory ``sys_block`` is a descriptor of),
    without its newline; None for a device that is no loop device or is not attached."""
    if not (name.startswith("loop") and name[4:].isdigit()):
        return None
    try:  # os.read, not Path.read_text: a third of the time, and this runs for every loop device
        descriptor = os.open(f"{name}/loop/backing_file", os.O_RDONLY | os.O_CLOEXEC, dir_fd=sys_block)
        try:
            backing = os.read(descriptor, 8192)
        finally:
            os.close(descriptor)
    except FileNotFoundError:
        return None  # not attached
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.ENXIO):
            return None  # detached (by another process) meanwhile
        raise
    return backing.rstrip(b"\n")


@final
class FuseActivator:
    """Activation through FUSE + loop, for kernels without device-mapper (containers, CI, this machine).

    Args:
        runtime_dir: where mount points, state files and server logs live (a tmpfs such as /run).
        python: interpreter that runs the server (default: this one, so the same venv).
        shared: one server process for every volume of ``runtime_dir`` (default :data:`SHARED_SERVER`),
            else one per volume. Either kind of server a runtime directory has is recognised and stopped.
    """

    def __init__(
        self,
        *,
        runtime_dir: str | os.PathLike[str] = DEFAULT_RUNTIME_DIR,
        python: str | None = None,
        shared: bool | None = None,
    ):
        self._runtime_dir = Path(runtime_dir)
        self._python = python or sys.executable
        self._shared = SHARED_SERVER if shared is None else shared

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
        current, unknown, loops = self._status_loops(name)  # one look for the loop devices: it is the cost
        if unknown and not current.active:  # it may be serving the view still: never torn down on a guess
            raise ActivationBusyError(f"cannot activate {name}: {current.problem}; try again later")
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
        pinned = _pin(loops)
        held = [device.path for device, _ in pinned if in_use(device.path)]
        if held:  # a filesystem mounted on the dead view: serving it anew would leave that on the dead one
            why = current.problem or f"{name} is not active"
            raise ActivationBusyError(
                f"{why}: {', '.join(held)} over its view is still in use (mounted?); stop volumed (it "
                "unmounts it) and start it again"
            )
        self._clean_up(name, loops=pinned)
        if self._shared:
            pid = self._hand_to_host(name, segment, size, volume_key)
        else:
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
        self._write_state(name, state | {"loop": device.path, "loop_diskseq": loop.read_diskseq(device.path)})
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
        pinned = _pin(self._loops(name))
        for device, _ in pinned:
            if in_use(device.path):
                raise ActivationBusyError(f"{name}: {device.path} is in use (mounted?); unmount it first")
        self._clean_up(name, loops=pinned)

    def is_active(self, name: str) -> bool:
        return self.status(name).active

    def status(self, name: str) -> ActivationStatus:
        """What is known of mapping ``name``. A live shared server that does not answer in
        :data:`QUERY_TIMEOUT` is taken to serve what is mounted and attached (``problem`` says it did not
        answer): it cannot be told from a stalled one. The FUSE mount itself is never looked at (a stat
        blocks for as long as the server is stalled), only /proc/self/mountinfo."""
        return self._status(name)[0]

    def _status(self, name: str) -> tuple[ActivationStatus, bool]:
        """The status, and whether the server was alive and did not answer (whether it serves is unknown)."""
        status, unknown, _ = self._status_loops(name)
        return status, unknown

    def _status_loops(self, name: str) -> tuple[ActivationStatus, bool, list[loop.LoopDevice]]:
        """`_status`, and the loop devices found attached to the decrypted file."""
        check_name(name)
        state = self._read_state(name) or {}
        loops = self._loops(name, state)
        pid = state.get("pid")
        serving = self._serving(pid, name) if isinstance(pid, int) else "the FUSE server is not running"
        unknown = isinstance(serving, _NoAnswer)
        server_alive = serving is None or unknown
        mounted = self._mounted(name)
        problem = None
        if state or loops or mounted:
            if not server_alive or unknown:
                problem = serving
            elif not mounted:
                problem = f"{self.mountpoint(name)} is not mounted"
            elif not loops:
                problem = f"no loop device is attached to {self.decrypted_file(name)}"
        active = server_alive and mounted and bool(loops)
        status = ActivationStatus(
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
        return status, unknown, loops

    # internals

    def _mounted(self, name: str) -> bool:
        """Whether the FUSE view of ``name`` is mounted, by /proc/self/mountinfo alone: is_mount_point's
        realpath would stat the FUSE root, which blocks while the server is stalled."""
        target = os.path.join(os.path.realpath(self._runtime_dir), check_name(name))
        try:
            with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as table:
                return any(_mount_point_field(line) == target for line in table)
        except FileNotFoundError:
            return False

    def _serving(self, pid: int, name: str) -> str | None:
        """Why server ``pid`` does not serve ``name`` now, or None when it does.

        A server of one volume has the name in its argv; the shared one is asked which volumes it serves
        (a crashed session is not serving; one that does not answer in time is a :class:`_NoAnswer`: it
        may serve it still).
        """
        argv = process_cmdline(pid)
        if argv is None or SERVER_MODULE not in argv:
            return "the FUSE server is not running"
        if "--host" not in argv:
            return None if name in argv else "the FUSE server is not running"
        try:
            reply = request(self._runtime_dir / SOCKET_NAME, {"op": "list"}, timeout=QUERY_TIMEOUT)
            served = {volume.name for volume in served_list(reply)}
        except ChannelError as exc:
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED):  # nothing listens: it is gone or leaving
                return "the FUSE server is not running"
            return _NoAnswer(f"the FUSE server (pid {pid}) does not answer: {exc}")
        except ControlError as exc:
            return _NoAnswer(f"the FUSE server (pid {pid}) does not answer: {exc}")
        if reply.get("pid") != pid:
            return "the FUSE server is not running"
        return None if name in served else f"the FUSE server (pid {pid}) no longer serves {name}"

    def _hand_to_host(self, name: str, segment: DataSegment, size: int, volume_key: bytes) -> int:
        """Have the runtime directory's shared server serve ``name`` (starting it when there is none)."""
        self.mountpoint(name).mkdir(parents=True, exist_ok=True, mode=0o700)
        device = os.path.realpath(segment.device)
        add = AddRequest(
            name, device, segment.offset, size, segment.sector_size, segment.iv_tweak, segment.cipher
        )
        try:
            fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise ActivationError(
                f"cannot open {device} for the FUSE server of {name}: {exc.strerror}"
            ) from exc
        try:
            with self._host_lock():
                try:
                    reply = request(self._runtime_dir / SOCKET_NAME, add.message(), key=volume_key, fd=fd)
                except ChannelError as exc:
                    if exc.errno not in (errno.ENOENT, errno.ECONNREFUSED):
                        raise ActivationError(f"the FUSE server for {name} did not start: {exc}") from exc
                    self._start_host(name)
                    reply = request(self._runtime_dir / SOCKET_NAME, add.message(), key=volume_key, fd=fd)
        except (ChannelError, ControlError) as exc:
            raise ActivationError(f"the FUSE server for {name} did not start: {exc}") from exc
        finally:
            os.close(fd)
        pid = reply.get("pid")
        if reply.get("ok") is not True or not isinstance(pid, int):
            with contextlib.suppress(OSError):
                os.rmdir(self.mountpoint(name))
            raise ActivationError(
                f"the FUSE server for {name} did not start: {str(reply.get('error'))[:800]}"
            )
        return pid

    @contextlib.contextmanager
    def _host_lock(self) -> Iterator[None]:
        descriptor = os.open(self._runtime_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def _start_host(self, name: str) -> None:
        """Start the shared server of this runtime directory; return once it listens (the lock is held)."""
        ready_read, ready_write = os.pipe()
        argv = [self._python, "-m", SERVER_MODULE, "--host", "--runtime-dir", str(self._runtime_dir),
                "--ready-fd", str(ready_write)]  # fmt: skip
        try:
            with open(self._runtime_dir / LOG_NAME, "ab") as log:
                process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    pass_fds=(ready_write,),
                    start_new_session=True,
                    cwd="/",
                )
        except OSError as exc:
            os.close(ready_read)
            os.close(ready_write)
            raise ActivationError(f"cannot start the FUSE server for {name}: {exc.strerror}") from exc
        os.close(ready_write)
        try:
            answer = _read_line(ready_read, READY_TIMEOUT)
        finally:
            os.close(ready_read)
        if answer != "ready":
            stop_process(process.pid, is_ours=[SERVER_MODULE, "--host"])
            why = answer or f"no answer within {READY_TIMEOUT:.0f} s"
            raise ActivationError(f"the FUSE server for {name} did not start: {why}{self._host_log_tail()}")
        process.returncode = 0  # it lives on in its own session: no one waits on it by accident

    def _host_log_tail(self) -> str:
        try:
            tail = (self._runtime_dir / LOG_NAME).read_text(encoding="utf-8", errors="replace").strip()[-800:]
        except FileNotFoundError:
            return ""
        return f" (server log: {tail})" if tail else ""

    def _host_remove(self, name: str) -> None:
        """Have the shared server, if any, stop serving ``name`` (its mount is usually gone by now)."""
        try:
            reply = request(self._runtime_dir / SOCKET_NAME, {"op": "remove", "name": name})
        except (ChannelError, ControlError):
            return  # no shared server: nothing serves it there
        if reply.get("ok") is not True:
            log.warning("%s: the FUSE server did not stop serving it: %s", name, reply.get("error"))

    def _loops(self, name: str, state: dict[str, object] | None = None) -> list[loop.LoopDevice]:
        """The loop devices over the volume's decrypted file. Once its FUSE mount is gone (a server stopped
        by SIGTERM unmounts it) sysfs names that file ``/<name>``: by the full path alone the device was never
        found again, and stayed attached. So the device the state file recorded is taken too, but only while
        it is that very attachment (the kernel's ``diskseq`` recorded at the attach): any other file the
        number was given since, whatever sysfs calls it, is another program's. ``state``: the state file as
        the caller read it (else it is read here, when it is needed)."""
        found = loops_backed_by(str(self.decrypted_file(name)))
        if found:
            return found
        if state is None:
            state = self._read_state(name) or {}
        recorded, sequence = state.get("loop"), state.get("loop_diskseq")
        if isinstance(recorded, str) and recorded.startswith("/dev/loop") and isinstance(sequence, int):
            device = loop.read_loop_device(recorded)
            if (
                device is not None
                and device.backing_name == f"/{name}"
                and loop.read_diskseq(recorded) == sequence
            ):
                return [device]
        return found

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

    def _clean_up(
        self,
        name: str,
        *,
        pid: int | None = None,
        loops: list[tuple[loop.LoopDevice, loop.LoopPin]] | None = None,
    ) -> None:
        """Detach loops, unmount, end the serving (a server of this volume alone is stopped, the shared one is
        told to stop serving it): whatever of a (half-made or dead) activation is left. ``loops``: the loop
        devices of ``name`` as the caller found them, with the file each mapped then (else they are looked
        up): one another program detached and reattached to its own file since is left alone."""
        for device, backing in _pin(self._loops(name)) if loops is None else loops:
            try:
                loop.detach(device, expected=backing)
            except loop.LoopError as exc:
                if exc.errno == errno.ESTALE:
                    log.info("%s: %s", name, exc)
        mountpoint = str(self.mountpoint(name))
        if self._mounted(name) and umount(mountpoint) != 0:
            umount(mountpoint, lazy=True)
        state = self._read_state(name) or {}
        for candidate in {pid, state.get("pid")}:
            argv = process_cmdline(candidate) if isinstance(candidate, int) else None
            if isinstance(candidate, int) and argv is not None and "--host" not in argv:
                stop_process(candidate, is_ours=[SERVER_MODULE, name])  # a server of this volume alone
        self._host_remove(name)
        self._state_file(name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            os.rmdir(mountpoint)

    def server_pids(self) -> set[int]:
        """The server processes the activations of this runtime directory run in (by their state files):
        the ones to watch, since a dead server leaves its volumes' loop devices failing every I/O."""
        pids = set()
        for name in self.leftovers():
            pid = (self._read_state(name) or {}).get("pid")
            if isinstance(pid, int) and not isinstance(pid, bool):
                pids.add(pid)
        return pids

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


def _pin(loops: list[loop.LoopDevice]) -> list[tuple[loop.LoopDevice, loop.LoopPin]]:
    """``loops`` that still map the file they were found on, each with that file's device and inode (for a
    detach that must not take a device another program has reattached meanwhile). One over a dead view (its
    server gone) is kept too: it must be checked for mounts and detached like a live one."""
    pinned = []
    for device in loops:
        with contextlib.suppress(loop.LoopError):
            backing = loop.pinned_backing(device)
            if backing is not None:
                pinned.append((device, backing))
    return pinned


class _NoAnswer(str):
    """Why a live shared server's volume cannot be told serving or not: it did not answer in time."""

    __slots__ = ()


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
    /proc, wherever their runtime directory is (a shared server is asked which volumes it serves; one that
    does not answer counts as using the whole of every file it holds open), and compared by device and
    inode, not by name.
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
        if "--host" in argv:
            found += _host_uses(int(entry.name), _server_options(argv), target, start_at, end)
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


def _host_uses(
    pid: int, options: dict[str, str], target: DataIdentity, start_at: int, end: int | None
) -> list[FuseServerUse]:
    """The volumes shared server ``pid`` serves over ``target`` between ``start_at`` and ``end``."""
    try:
        reply = request(
            Path(options.get("--runtime-dir", "")) / SOCKET_NAME, {"op": "list"}, timeout=QUERY_TIMEOUT
        )
        served = served_list(reply)
    except (ChannelError, ControlError):
        if _open_file_identity(pid, target.key) is None:
            return []
        return [FuseServerUse("?", pid, 0, 1 << 63, "")]  # cannot tell which bytes: all of them
    found = []
    for volume in served:
        identity = _identity(volume.device) or _open_file_identity(pid, target.key)
        if identity is None or identity.key != target.key:
            continue
        first = identity.offset + volume.offset
        if first + volume.size > start_at and (end is None or first < end):
            found.append(FuseServerUse(volume.name, pid, volume.offset, volume.size, volume.mountpoint))
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


def _mount_point_field(line: str) -> str | None:
    fields = line.split(" ")
    return unescape_mountinfo(fields[4]) if len(fields) > 4 else None


def _flags(value: object) -> tuple[str, ...]:
    return tuple(flag for flag in value if isinstance(flag, str)) if isinstance(value, list) else ()


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None


__all__ = ["DEFAULT_RUNTIME_DIR", "FuseActivator", "FuseServerUse", "fuse_servers_over", "segment_size"]
