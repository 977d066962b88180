"""Which file a loop device maps, as the kernel knows it (LOOP_GET_STATUS64), not as sysfs names it.

sysfs ``loop/backing_file`` is a path: `` (deleted)`` once the name was removed, relative to the mount
namespace the device was attached in (``/`` for a file bind-mounted in a container), and reused by any other
file given the same name. The device and inode the ioctl reports are the open file itself.
"""

from __future__ import annotations

import errno
import fcntl
import os
from dataclasses import dataclass

from . import _abi
from ._errors import LoopError
from ._sysfs import LoopDevice, read_loop_device


@dataclass(frozen=True)
class LoopBacking:
    """The file a loop device maps: its ``st_dev``/``st_ino``, from ``offset``, ``size_limit`` bytes.

    ``attached_by_volumed``: the device was attached by :func:`~._attach.attach` (its kernel name carries
    ``OWNER_MARK``), not by another program (losetup, ``mount -o loop``): only such a device may be taken
    over after a restart.
    """

    device: int
    inode: int
    offset: int
    size_limit: int
    attached_by_volumed: bool = False


@dataclass(frozen=True)
class UnreachableBacking:
    """A file the kernel cannot stat for LOOP_GET_STATUS64 (``ENOTCONN``/``ECONNABORTED``: it is on a FUSE
    mount whose server is gone), so its device and inode are unknown: told by the name sysfs shows and the
    offset, checked with the loop device open. Only a dead FUSE file answers so; another program's file
    attached to the number since answers the ioctl."""

    file_name: str
    offset: int


LoopPin = LoopBacking | UnreachableBacking
"""What :func:`pinned_backing` found a device mapping, for :func:`~._attach.detach`'s ``expected``."""

# The loop driver stats the backing file for LOOP_GET_STATUS64; a FUSE file whose server died fails so.
UNREACHABLE_FILE_ERRORS: frozenset[int] = frozenset({errno.ENOTCONN, errno.ECONNABORTED})


def loop_backing(fd: int) -> LoopBacking | None:
    """The file the loop device open as ``fd`` maps, or None when no file is attached to it.

    Raises:
        LoopError: ``fd`` is not a loop device, or the kernel does not answer.
    """
    try:
        raw = fcntl.ioctl(fd, _abi.LOOP_GET_STATUS64, bytes(_abi.LOOP_INFO64.size))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return None
        raise LoopError(exc.errno, f"cannot ask the loop driver which file it maps: {exc.strerror}") from None
    device, inode, _rdevice, offset, size_limit, *_, file_name, _crypt_name, _key, _init0, _init1 = (
        _abi.LOOP_INFO64.unpack(raw)
    )
    return LoopBacking(
        device=device,
        inode=inode,
        offset=offset,
        size_limit=size_limit,
        attached_by_volumed=file_name.startswith(_abi.OWNER_MARK),
    )


def loop_backing_of(path: str | os.PathLike[str]) -> LoopBacking | None:
    """:func:`loop_backing` of the loop device (or partition of one) at ``path``.

    Raises:
        LoopError: ``path`` cannot be opened or is not a loop device.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise LoopError(exc.errno, f"cannot open {path}: {exc.strerror}") from None
    try:
        return loop_backing(fd)
    finally:
        os.close(fd)


def pinned_backing(device: LoopDevice) -> LoopPin | None:
    """The file ``device`` maps, if it is still attached over the file a look-up found it on (sysfs
    ``backing_file`` and offset); None when it is detached or maps another file now. A file on a dead FUSE
    mount (the kernel cannot stat it) is an :class:`UnreachableBacking`: such a device must still be found,
    checked for mounts and detached, or it stays attached for good.

    For :func:`~._attach.detach`'s ``expected``: a look-up by name (sysfs) does not tell one file from
    another given that name later, nor the device a program reattached meanwhile; the device and inode do.
    Checked with the device open, so it cannot be detached and reattached in between.
    """
    try:
        fd = os.open(device.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENXIO):
            return None
        raise LoopError(exc.errno, f"cannot open {device.path}: {exc.strerror}") from None
    try:
        backing: LoopPin | None
        try:
            backing = loop_backing(fd)
        except LoopError as exc:
            if exc.errno not in UNREACHABLE_FILE_ERRORS:
                raise
            backing = UnreachableBacking(device.backing_name, device.offset)
        now = read_loop_device(device.path)
    finally:
        os.close(fd)
    if (
        backing is None
        or now is None
        or (now.backing_name, now.offset) != (device.backing_name, device.offset)
    ):
        return None
    return backing
