"""Changing the size limit of an attached loop device (LOOP_SET_STATUS64), e.g. after its partition grew."""

from __future__ import annotations

import errno
import fcntl
import os

from . import _abi
from ._errors import LoopError
from ._sysfs import LoopDevice, read_loop_device


def set_size_limit(device: str | os.PathLike[str] | LoopDevice, size_limit: int) -> LoopDevice:
    """Give the attached loop device ``device`` the size limit ``size_limit`` (bytes; 0: to the end of its
    file), keeping its file, offset and flags; the kernel resizes the device, also while it is mounted (a
    filesystem on it sees a larger device, as after a partition grew). Returns the device as it is now.

    Raises:
        LoopError: not an attached loop device, or the kernel refuses the change.
    """
    path = device.path if isinstance(device, LoopDevice) else os.fspath(device)
    if size_limit < 0:
        raise LoopError(errno.EINVAL, f"negative size limit {size_limit} for {path}")
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise LoopError(exc.errno or errno.EIO, f"cannot open {path}: {exc.strerror}") from None
    try:
        try:
            raw = fcntl.ioctl(descriptor, _abi.LOOP_GET_STATUS64, bytes(_abi.LOOP_INFO64.size))
        except OSError as exc:
            raise LoopError(
                exc.errno or errno.EIO, f"cannot read the status of {path}: {exc.strerror}"
            ) from None
        fields = list(_abi.LOOP_INFO64.unpack(raw))
        fields[4] = size_limit  # lo_sizelimit
        try:
            fcntl.ioctl(descriptor, _abi.LOOP_SET_STATUS64, _abi.LOOP_INFO64.pack(*fields))
        except OSError as exc:
            raise LoopError(
                exc.errno or errno.EIO, f"cannot set the size limit of {path} to {size_limit}: {exc.strerror}"
            ) from None
    finally:
        os.close(descriptor)
    now = read_loop_device(path)
    if now is None:
        raise LoopError(errno.ENXIO, f"{path} was detached while its size limit was set")
    return now
