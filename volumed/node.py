"""The embedding API: run the volume subsystem from an init written in Python, as `volumed run` does.

`volumed run` is built on it: the same checks before anything is written (privileges and backend, plugins,
the state directory and disks not owned by another run), signals (SIGTERM, SIGINT), the API socket,
logging, sd_notify and the ``--once`` outcome as an exit code::

    from volumed.controllers import SubsystemOptions
    from volumed.node import run

    code = run(SubsystemOptions(config=Path("/etc/volumed.yaml")), plugins=["mycompany.volumes:plugin"])
"""

from __future__ import annotations

import dataclasses
import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

    from volumed.controllers import Plugin, SubsystemOptions
    from volumed.storage.blockdev import LockFile

__all__ = ["EXIT_BUSY", "EXIT_CANNOT_RUN", "EXIT_USAGE", "NodeError", "load_plugins", "run", "run_async"]

EXIT_USAGE: Final = 2
"""A plugin that cannot be loaded or registered (as a bad command line: nothing was done)."""
EXIT_CANNOT_RUN: Final = 3
"""Not root, or no usable activation backend: nothing was written."""
EXIT_BUSY: Final = 5
"""The state directory or a disk is owned by another run: nothing was done."""


class NodeError(Exception):
    """The subsystem could not start; nothing was written. ``exit_code`` is what `volumed run` exits with."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load_plugins(
    options: SubsystemOptions, specs: Sequence[str | Plugin] = (), *, entry_points: bool = True
) -> list[Plugin]:
    """The plugins of the ``volumed.controllers`` entry-point group (unless ``entry_points`` is false), then
    ``specs`` (``module:attribute`` strings or `Plugin` objects), in that order.

    Raises:
        NodeError: (exit 2) one fails to load, naming it.
    """
    from volumed.controllers import PluginError, entry_point_plugins, load_plugin

    try:
        plugins = entry_point_plugins(options) if entry_points else []
        plugins += [load_plugin(spec, options) if isinstance(spec, str) else spec for spec in specs]
    except PluginError as error:
        raise NodeError(str(error), EXIT_USAGE) from error
    return plugins


async def run_async(
    options: SubsystemOptions,
    *,
    plugins: Sequence[str | Plugin] = (),
    entry_points: bool = True,
    socket: Path | None = None,
    once: bool = False,
    settle_timeout: float = 600.0,
    notify: bool = False,
    configure_logs: bool = True,
    verbose: bool = False,
) -> int:
    """Run the subsystem until SIGTERM/SIGINT (or, with ``once``, until the volumes settled); the exit code.

    Signals reach only the main thread: called from another thread, it installs no signal handler and runs
    until the embedder cancels it (or, with ``once``, until the volumes settled); volumes are closed then.

    ``socket``: the API socket (default ``state_dir/api.sock``). ``notify``: sd_notify READY=1/STATUS=/
    STOPPING=1 to ``$NOTIFY_SOCKET``. ``configure_logs``: set up volumed's logging (off when the init set up
    structlog itself). Exit codes as `volumed run`: 0 ok, 1 an error or (``once``) not settled in time,
    6 (``once``) a volume failed, 7 (``once``) one is missing.

    Raises:
        NodeError: the subsystem could not start (exit codes 2: a plugin or a malformed ``options.tcti``; 3,
            5, 1); nothing was written.
    """
    import anyio.to_thread

    from volumed.keys import check_tcti
    from volumed.storage.activation import backend_problem, forbid_core_dumps
    from volumed.storage.blockdev import BlockDeviceError, DiskBusyError

    from .cli._instance_lock import claim_instance
    from .cli._logging import configure_logging
    from .cli._run_loop import run_subsystem
    from .cli._sd_notify import Notifier

    try:
        check_tcti(options.tcti)  # as `volumed run --tpm-tcti`: a path given for it only shows at a TPM key
    except ValueError as error:
        raise NodeError(f"tcti: {error}; nothing was written", EXIT_USAGE) from None
    forbid_core_dumps()  # before any key is read: a core of this process would hold volume keys
    options = _absolute(options)
    socket_path = _absolute_path(socket) if socket is not None else options.state_dir / "api.sock"
    if configure_logs:
        configure_logging(verbose=verbose)
    problem = backend_problem(options.backend)
    if problem is not None:
        raise NodeError(f"cannot run here, nothing was written: {problem}", EXIT_CANNOT_RUN)
    loaded = load_plugins(options, plugins, entry_points=entry_points)

    def claim() -> list[LockFile]:
        os.makedirs(options.state_dir, mode=0o700, exist_ok=True)
        return claim_instance(options.state_dir, options.disks)

    try:
        locks = await anyio.to_thread.run_sync(claim)
    except DiskBusyError as error:
        raise NodeError(f"{error}; nothing was done", EXIT_BUSY) from None
    except (BlockDeviceError, OSError) as error:
        if error.errno in (errno.EPERM, errno.EACCES):  # not root, or a directory or lock of another user
            raise NodeError(f"cannot run here, nothing was written: {error}", EXIT_CANNOT_RUN) from None
        raise NodeError(str(error), 1) from None
    notifier = Notifier.from_environment() if notify else None  # taken out of the environment children get
    try:
        return await run_subsystem(options, socket_path, once, settle_timeout, notifier, loaded)
    except Exception as error:
        from volumed.controllers import PluginError

        if isinstance(error, PluginError):  # registration: before the runtime started, nothing written
            raise NodeError(str(error), EXIT_USAGE) from error
        raise
    finally:
        if notifier is not None:
            notifier.close()
        for lock in locks:  # held to the end: volumes are closed by now
            lock.release()


def run(options: SubsystemOptions, **kwargs: object) -> int:
    """`run_async` in a new event loop (the keyword arguments are the same)."""
    import functools

    import anyio

    return anyio.run(functools.partial(run_async, options, **kwargs))  # type: ignore[arg-type]


def _absolute_path(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _absolute(options: SubsystemOptions) -> SubsystemOptions:
    """Paths made absolute: relative ones would mean something else to the FUSE servers and tools, which run
    from "/"."""

    def absolute(path: str | None) -> str | None:
        return os.path.abspath(path) if path else path

    return dataclasses.replace(
        options,
        config=Path(os.path.abspath(options.config)) if options.config is not None else None,
        disks=tuple(os.path.abspath(disk) for disk in options.disks),
        root=Path(os.path.abspath(options.root)),
        state_dir=Path(os.path.abspath(options.state_dir)),
        kms_ca_file=absolute(options.kms_ca_file),
        tpm_pcr_public_key=absolute(options.tpm_pcr_public_key),
        tpm_pcr_signature=absolute(options.tpm_pcr_signature),
    )
