"""Backend selection: ``dm`` where device-mapper works, else ``fuse``, else an error naming what lacks."""

from __future__ import annotations

import ctypes.util
import errno
import importlib.util
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from ._errors import BackendUnavailableError
from ._model import DEFAULT_RUNTIME_DIR

if TYPE_CHECKING:
    from ._model import BackendName
    from ._protocol import Activator

BackendChoice = Literal["auto", "dm", "fuse"]

DM_CONTROL: Final = "/dev/mapper/control"
FUSE_DEVICE: Final = "/dev/fuse"
LOOP_CONTROL: Final = "/dev/loop-control"


def _device_problem(path: str, what: str) -> str | None:
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return f"{path} is missing ({what})"
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.ENXIO):
            return f"{path} exists but the kernel has no driver behind it ({what}): {exc.strerror}"
        return f"{path} cannot be opened ({what}): {exc.strerror}"
    os.close(descriptor)
    return None


def dm_unavailable_reason() -> str | None:
    """Why the ``dm`` backend cannot work here, or None when it can."""
    problem = _device_problem(DM_CONTROL, "device-mapper: a kernel with dm-mod and dm-crypt")
    if problem is None and shutil.which("dmsetup") is None and not Path("/usr/sbin/dmsetup").exists():
        problem = "dmsetup is not installed (Debian package dmsetup)"
    return problem


def fuse_unavailable_reason() -> str | None:
    """Why the ``fuse`` backend cannot work here, or None when it can."""
    problem = _device_problem(FUSE_DEVICE, "FUSE: the fuse kernel module") or _device_problem(
        LOOP_CONTROL, "loop devices: the loop kernel module"
    )
    if problem is None and ctypes.util.find_library("fuse3") is None:
        problem = "libfuse3 is not installed (Debian package fuse3)"
    if problem is None and importlib.util.find_spec("mfusepy") is None:
        problem = "the Python package mfusepy is not installed"
    return problem


CAP_SYS_ADMIN: Final = 21


def privilege_problem() -> str | None:
    """Why this process cannot activate or mount anything (no CAP_SYS_ADMIN), or None when it can.

    Both backends need it (dm tables, loop devices, mounts); without it the first activation fails, after the
    disks were already written.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            effective = next(line for line in status if line.startswith("CapEff:"))
        if int(effective.split()[1], 16) >> CAP_SYS_ADMIN & 1:
            return None
    except (OSError, StopIteration, ValueError):
        if os.geteuid() == 0:
            return None
    return (
        f"activating and mounting volumes needs root (CAP_SYS_ADMIN); this process (uid {os.geteuid()}) "
        "does not have it"
    )


def backend_problem(backend: BackendChoice = "auto") -> str | None:
    """Why ``backend`` cannot activate volumes here (privileges, devices, packages), or None when it can.

    Checked before anything is written: the same tests :func:`select_activator` makes, plus the privileges.
    """
    problem = privilege_problem()
    if problem is not None:
        return problem
    try:
        _choose(backend)
    except BackendUnavailableError as error:
        return str(error)
    return None


def backend_availability() -> dict[BackendName, str | None]:
    """Each backend with the reason it cannot run here (None: it can)."""
    return {"dm": dm_unavailable_reason(), "fuse": fuse_unavailable_reason()}


def select_activator(
    backend: BackendChoice = "auto", *, runtime_dir: str | os.PathLike[str] = DEFAULT_RUNTIME_DIR
) -> Activator:
    """The activator for ``backend``; ``auto`` prefers dm and falls back to fuse.

    Raises:
        BackendUnavailableError: the chosen backend (for ``auto``: every backend) cannot run here; the message
            gives each reason.
    """
    # each backend's code is imported only when it is the one chosen: a node on dm never loads the FUSE client
    if _choose(backend) == "dm":
        from ._dm import DmActivator

        return DmActivator()
    from ._fuse import FuseActivator

    return FuseActivator(runtime_dir=runtime_dir)


def _choose(backend: BackendChoice) -> BackendName:
    reasons = backend_availability()
    candidates: list[BackendName] = ["dm", "fuse"] if backend == "auto" else [backend]
    for candidate in candidates:
        if reasons[candidate] is None:
            return candidate
    detail = "; ".join(f"{name}: {reasons[name]}" for name in candidates)
    raise BackendUnavailableError(f"no usable activation backend ({backend}): {detail}")
