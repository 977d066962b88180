"""Attaching and detaching loop devices through /dev/loop-control and the LOOP_CONFIGURE ioctl."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from typing import TYPE_CHECKING, Final

from . import _abi
from ._errors import LoopError
from ._status import UNREACHABLE_FILE_ERRORS, LoopPin, UnreachableBacking, loop_backing
from ._sysfs import LoopDevice, read_loop_device

if TYPE_CHECKING:
    from collections.abc import Iterator

LOOP_CONTROL: Final = "/dev/loop-control"
_ATTEMPTS: Final = 32


def _node(number: int) -> str:
    """``/dev/loopN``, created when devtmpfs has not (yet) made it, as losetup would find it."""
    path = f"/dev/loop{number}"
    if not os.path.exists(path):
        with contextlib.suppress(FileExistsError):
            os.mknod(path, stat.S_IFBLK | 0o660, os.makedev(_abi.LOOP_MAJOR, number))
    return path


def attach(
    path: str | os.PathLike[str],
    *,
    offset: int = 0,
    size_limit: int = 0,
    read_only: bool = False,
    autoclear: bool = False,
    direct_io: bool = False,
    block_size: int = 0,
) -> LoopDevice:
    """Attach ``path`` (from ``offset``, at most ``size_limit`` bytes, 0 = to its end) to a free loop device.

    Args:
        path: a regular file (an image, or a FUSE file).
        offset: byte offset in the file where the device starts.
        size_limit: device size in bytes; 0 for the rest of the file.
        read_only: attach read-only (the file is opened read-only too).
        autoclear: let the kernel detach the device when its last opener closes it. Nothing holds it open
            once this returns, so the kernel detaches it at once: use :func:`attached` for autoclear.
        direct_io: bypass the page cache of the backing file.
        block_size: logical block size of the device (0: the kernel's default, 512).

    Raises:
        LoopError: the file cannot be opened, no loop device is free, or the kernel refuses the setup.
    """
    device, descriptor = _attach(path, offset, size_limit, read_only, autoclear, direct_io, block_size)
    os.close(descriptor)
    return device


@contextlib.contextmanager
def attached(
    path: str | os.PathLike[str],
    *,
    offset: int = 0,
    size_limit: int = 0,
    read_only: bool = False,
    autoclear: bool = True,
    direct_io: bool = False,
    block_size: int = 0,
) -> Iterator[LoopDevice]:
    """Attach like :func:`attach`, holding the device open for the ``with`` block.

    With ``autoclear`` (the default) the kernel detaches the device once the block has ended and its last
    other user (a mount) has let go, as ``mount -o loop`` does; without it, it is detached when the block
    ends (lazily, if still in use).
    """
    device, descriptor = _attach(path, offset, size_limit, read_only, autoclear, direct_io, block_size)
    try:
        yield device
    finally:
        os.close(descriptor)
        if not autoclear and read_loop_device(device.path) is not None:
            detach(device)


def _attach(
    path: str | os.PathLike[str],
    offset: int,
    size_limit: int,
    read_only: bool,
    autoclear: bool,
    direct_io: bool,
    block_size: int,
) -> tuple[LoopDevice, int]:
    name = os.fspath(path)
    if offset < 0 or size_limit < 0:
        raise LoopError(errno.EINVAL, f"negative offset {offset} or size limit {size_limit} for {name!r}")
    flags = (
        (_abi.LO_FLAGS_READ_ONLY if read_only else 0)
        | (_abi.LO_FLAGS_AUTOCLEAR if autoclear else 0)
        | (_abi.LO_FLAGS_DIRECT_IO if direct_io else 0)
    )
    try:
        backing = os.open(name, (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC)
    except OSError as exc:
        raise LoopError(exc.errno or errno.EIO, f"cannot open {name!r} to attach it: {exc.strerror}") from exc
    try:
        if not stat.S_ISREG(os.fstat(backing).st_mode) and not stat.S_ISBLK(os.fstat(backing).st_mode):
            raise LoopError(errno.EINVAL, f"{name!r} is not a regular file or block device")
        info = _abi.loop_info64(
            offset=offset,
            size_limit=size_limit,
            flags=flags,
            file_name=_abi.OWNER_MARK + os.path.realpath(name).encode(errors="surrogateescape"),
        )
        config = _abi.loop_config(fd=backing, block_size=block_size, info=info)
        number, descriptor = _configure_free_device(config, read_only=read_only, name=name)
    finally:
        os.close(backing)
    device = read_loop_device(f"loop{number}")
    if device is None:
        os.close(descriptor)
        raise LoopError(errno.ENXIO, f"loop{number} vanished right after attaching {name!r}")
    return device, descriptor


def _configure_free_device(config: bytes, *, read_only: bool, name: str) -> tuple[int, int]:
    """Configure a free loop device; return its number and an open descriptor (which holds autoclear off)."""
    try:
        control = os.open(LOOP_CONTROL, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise LoopError(exc.errno or errno.ENODEV, f"loop devices are unavailable ({LOOP_CONTROL}: "
                        f"{exc.strerror}); load the loop module") from exc  # fmt: skip
    try:
        for _ in range(_ATTEMPTS):
            try:
                number = fcntl.ioctl(control, _abi.LOOP_CTL_GET_FREE)
            except OSError as exc:
                raise LoopError(exc.errno or errno.ENOSPC, f"no free loop device: {exc.strerror}") from exc
            device = os.open(_node(number), (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC)
            try:
                fcntl.ioctl(device, _abi.LOOP_CONFIGURE, config)
            except OSError as exc:
                os.close(device)
                if exc.errno == errno.EBUSY:  # another attacher took it between GET_FREE and CONFIGURE
                    time.sleep(0.01)
                    continue
                raise LoopError(exc.errno or errno.EIO, f"cannot attach {name!r} to loop{number}: "
                                f"{exc.strerror}") from exc  # fmt: skip
            return number, device
        raise LoopError(errno.EBUSY, f"no loop device stayed free long enough to attach {name!r}")
    finally:
        os.close(control)


def detach(device: str | os.PathLike[str] | LoopDevice, *, expected: LoopPin | None = None) -> None:
    """Detach a loop device. A device still open elsewhere (mounted) goes when its last opener closes it.

    ``expected``: the file the device mapped when the caller looked it up (:func:`~._status.pinned_backing`).
    Another program may have detached the device since and attached its own file to it (``losetup -f`` takes
    the lowest free number): such a device is left alone. The check is made with the device open, which keeps
    it from being detached and reattached until LOOP_CLR_FD (a detach by another opener is only deferred).

    Raises:
        LoopError: not a loop device, or not attached (ENXIO); attached over another file than ``expected``
            (ESTALE, nothing done).
    """
    path = device.path if isinstance(device, LoopDevice) else os.fspath(device)
    if read_loop_device(path) is None:
        raise LoopError(errno.ENXIO, f"{path} is not an attached loop device")
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise LoopError(exc.errno or errno.EIO, f"cannot open {path} to detach it: {exc.strerror}") from exc
    try:
        if expected is not None and not _maps(descriptor, expected, path):
            return  # detached meanwhile (by someone else): nothing to do
        fcntl.ioctl(descriptor, _abi.LOOP_CLR_FD)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # ENXIO: someone else detached it meanwhile
            raise LoopError(exc.errno or errno.EIO, f"cannot detach {path}: {exc.strerror}") from exc
    finally:
        os.close(descriptor)


def _maps(descriptor: int, expected: LoopPin, path: str) -> bool:
    """Whether the loop device open as ``descriptor`` still maps ``expected``: False when it maps nothing.

    Raises:
        LoopError: it maps another file (ESTALE).
    """
    try:
        current = loop_backing(descriptor)
    except LoopError as exc:
        if not isinstance(expected, UnreachableBacking) or exc.errno not in UNREACHABLE_FILE_ERRORS:
            raise
        now = read_loop_device(path)  # still a dead FUSE file: the one looked up if sysfs names it so
        if now is None:
            return False
        if (now.backing_name, now.offset) == (expected.file_name, expected.offset):
            return True
        raise LoopError(
            errno.ESTALE, f"{path} is attached over another file than the one looked up; left alone"
        ) from None
    if current is None:
        return False
    if isinstance(expected, UnreachableBacking) or (current.device, current.inode, current.offset) != (
        expected.device,
        expected.inode,
        expected.offset,
    ):
        raise LoopError(
            errno.ESTALE, f"{path} is attached over another file than the one looked up; left alone"
        )
    return True
