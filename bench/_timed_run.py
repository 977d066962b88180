"""`volumed run` with its boot steps timed, for ``bench/boot.py`` (host mode).

Run as ``python bench/_timed_run.py OUT.json run ARGS...``: the ``volumed`` console script
(``volumed.cli:main``) with a few functions wrapped where the run path calls them, to time each call and
attribute it to a volume (by the ``volume`` the VolumeFormatter binds in structlog's context while it works on
one; a mount by its target). At exit, OUT.json gets every timed step as ``[start, end, step, volume]``, every
log event (with the time it was emitted; debug events are recorded but not printed unless ``-v`` is given),
the process' milestones and the statuses `--once` printed, all on the system-wide monotonic clock
(``time.monotonic``), which the process that spawned this one shares.

Steps: ``kdf`` (the key-slot KDF), ``open`` (opening the LUKS2 header with the volume's keys: key retrieval,
header reads and the KDF), ``activation`` (the backend serves the opened volume), within it
``fuse_hand_over`` (the shared FUSE server takes the volume, started first when there is none: its lock, the
request), ``loop_attach`` (the loop device over the decrypted file) and ``loop_list`` (looking up loop devices
in sysfs, as the fuse backend's status checks do), ``probe`` (what is on a region:
examine_region / probe_filesystem), ``mount``, ``discovery`` (a disk scan), ``settle_check`` (`--once` reading
whether the volumes settled), ``subsystem_build``, ``checks`` (`volumed run`'s checks before the runtime:
backend, plugins). Nothing here changes what the run does.
"""

from __future__ import annotations

import time

STARTED = time.monotonic()  # the interpreter is up; nothing of volumed imported yet

import atexit  # noqa: E402 (after the first clock reading, on purpose)
import base64  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

_lock = threading.Lock()
_steps: list[list[Any]] = []
_events: list[list[Any]] = []
_kdf: list[list[Any]] = []
_milestones: dict[str, float] = {"started": STARTED}
_statuses: dict[str, dict[str, Any]] = {}


def _volume() -> str:
    import structlog

    return str(structlog.contextvars.get_contextvars().get("volume", ""))


def _record(step: str, start: float, volume: str) -> None:
    with _lock:
        _steps.append([start, time.monotonic(), step, volume])


def _wrap_sync(owner: Any, attribute: str, step: str, label: Any = None) -> None:
    """Time every call of ``owner.attribute``; ``label(args)`` names what it worked on when no volume is bound
    (the Mounter binds none: a mount is named by its target)."""
    original = getattr(owner, attribute, None)
    if original is None:
        raise SystemExit(f"bench/_timed_run.py: {owner.__name__}.{attribute} is gone: update the bench")

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return original(*args, **kwargs)
        finally:
            _record(step, start, _volume() or (label(args) if label is not None else ""))

    setattr(owner, attribute, timed)


def _wrap_async(owner: Any, attribute: str, step: str) -> None:
    original = getattr(owner, attribute, None)
    if original is None:
        raise SystemExit(f"bench/_timed_run.py: {owner.__name__}.{attribute} is gone: update the bench")

    @functools.wraps(original)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return await original(*args, **kwargs)
        finally:
            _record(step, start, _volume())

    setattr(owner, attribute, timed)


def _record_events(verbose: bool) -> Any:
    """A structlog processor that records every event with its time; drops debug ones unless ``verbose``."""
    import structlog

    def processor(_logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        fields = {
            key: str(event_dict[key])
            for key in ("controller", "volume", "phase", "key", "seconds", "failures", "reason")
            if key in event_dict
        }
        with _lock:
            _events.append([time.monotonic(), method, str(event_dict.get("event", "")), fields])
        if method == "debug" and not verbose:
            raise structlog.DropEvent
        return event_dict

    return processor


def _cpu_seconds() -> dict[str, float]:
    """CPU seconds so far: this process (its threads: KDFs, workers), the programs it ran and waited for
    (mount, losetup...), and the FUSE servers serving its volumes (found by this run's state directory on
    their command line: they are not waited for)."""
    times = os.times()
    state_dir = (
        os.path.abspath(sys.argv[sys.argv.index("--state-dir") + 1]) if "--state-dir" in sys.argv else ""
    )
    servers = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if not state_dir or not any(a.startswith(state_dir.encode()) for a in argv):
                continue
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            servers += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            continue
    return {
        "cpu_process_s": times.user + times.system,
        "cpu_programs_s": times.children_user + times.children_system,
        "cpu_fuse_servers_s": servers,
    }


def install() -> None:
    """Wrap the run path's steps (the modules are the ones `volumed run` imports anyway)."""
    import structlog

    import volumed.cli._logging as logging_module
    import volumed.cli._readiness as readiness
    import volumed.cli._run_loop as run_loop
    import volumed.controllers.block._discovery_controller as discovery_controller
    import volumed.controllers.block._formatter as formatter
    import volumed.controllers.block._mounter as mounter
    import volumed.node as node
    import volumed.storage.activation as activation
    import volumed.storage.activation._fuse as fuse
    import volumed.storage.luks2._keyslots as keyslots
    from volumed.storage import loop
    from volumed.storage.activation import FuseActivator
    from volumed.storage.luks2 import lowlevel

    _milestones["imported"] = time.monotonic()
    original_kdf = lowlevel.derive_key
    if getattr(keyslots, "derive_key", None) is not original_kdf:
        raise SystemExit(
            "volumed.storage.luks2._keyslots no longer calls lowlevel.derive_key: update the bench"
        )

    def timed_derive_key(kdf: Any, passphrase: bytes, length: int) -> bytes:
        start = time.monotonic()
        try:
            key: bytes = original_kdf(kdf, passphrase, length)
            return key
        finally:
            end = time.monotonic()
            with _lock:
                _kdf.append([start, end, base64.b64encode(bytes(kdf.salt)).decode(), _volume()])

    setattr(keyslots, "derive_key", timed_derive_key)  # noqa: B010 (a private module's name)
    _wrap_async(formatter, "open_encrypted", "open")
    _wrap_sync(formatter, "examine_region", "probe")
    _wrap_sync(formatter, "probe_filesystem", "probe")
    _wrap_sync(FuseActivator, "activate", "activation")
    _wrap_sync(FuseActivator, "_hand_to_host", "fuse_hand_over")
    _wrap_sync(loop, "attach", "loop_attach")
    _wrap_sync(loop, "list_loop_devices", "loop_list")
    _wrap_sync(fuse, "loops_backed_by", "loop_list")
    _wrap_sync(mounter, "mount", "mount", label=lambda args: str(args[1]) if len(args) > 1 else "")
    _wrap_sync(discovery_controller, "discover", "discovery")
    _wrap_sync(run_loop, "build_subsystem", "subsystem_build")
    _wrap_async(readiness, "convergence", "settle_check")
    _wrap_sync(node, "load_plugins", "checks")
    _wrap_sync(activation, "backend_problem", "checks")

    original_configure = logging_module.configure_logging

    def configure_logging(*, verbose: bool = False, **kwargs: Any) -> None:
        original_configure(
            verbose=True, **kwargs
        )  # every level reaches the processors; debug is dropped there
        config = structlog.get_config()
        structlog.configure(processors=[_record_events(verbose), *config["processors"]])

    setattr(logging_module, "configure_logging", configure_logging)  # noqa: B010

    original_print = run_loop.print_statuses

    def print_statuses(snapshot: Any) -> None:
        _milestones["settled"] = time.monotonic()
        _milestones.update(_cpu_seconds())
        for volume_id, status in snapshot.statuses.items():
            _statuses[volume_id] = {
                "phase": status.phase.value,
                "location": status.location,
                "offset": status.offset,
                "size": status.size,
                "mount_location": status.mount_location,
                "filesystem": status.filesystem,
                "error": status.error_message,
            }
        _milestones["settled_ok"] = float(bool(snapshot.settled and snapshot.ok))
        original_print(snapshot)

    setattr(run_loop, "print_statuses", print_statuses)  # noqa: B010


def main() -> None:
    if len(sys.argv) < 3:  # `make bench` runs every file of bench/: this one is bench/boot.py's helper
        print(
            "bench/_timed_run.py is run by bench/boot.py (OUT.json run ARGS...), not a benchmark of its own"
        )
        return
    out = Path(sys.argv[1])

    def dump() -> None:
        with _lock:
            data = {
                "milestones": {**_milestones, "exited": time.monotonic()},
                "steps": _steps,
                "events": _events,
                "kdf_runs": _kdf,
                "statuses": _statuses,
            }
        out.write_text(json.dumps(data))

    atexit.register(dump)
    install()
    from volumed.cli import main as cli_main

    _milestones["cli_imported"] = time.monotonic()
    sys.argv = ["volumed", *sys.argv[2:]]
    cli_main()


if __name__ == "__main__":
    main()
