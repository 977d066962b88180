"""One `volumed run` per disk and per state directory: the locks it takes at start, before any write."""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING, Final

from volumed.storage.blockdev import BlockDeviceError, DiskBusyError, disk_key, hold_lock_file, lock_disk

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from volumed.storage.blockdev import LockFile

OWNER: Final = "volumed run"
STATE_DIR_LOCK: Final = "volumed.lock"


def node_disks() -> list[str]:
    """The disks discovery uses when no ``--disk`` is given: every whole disk but our own loop devices."""
    from volumed.storage.blockdev import list_block_devices

    return [
        disk.dev_path
        for disk in list_block_devices()
        if not (disk.backing_file is not None and disk.name.startswith("loop"))
    ]


def claim_instance(state_dir: Path, disks: Sequence[str]) -> list[LockFile]:
    """Own ``state_dir`` and every disk (the node's disks when ``disks`` is empty) until the process ends.

    A second instance on the same disks, even with another state directory, would open every volume again (a
    second writable view of each) and report them ready. All or nothing: on a refusal the locks taken so far
    are released.

    Raises:
        DiskBusyError: another process owns the state directory or one of the disks; the message names it.
    """
    check_private_dir(state_dir, "state directory")
    locks = [hold_lock_file(state_dir / STATE_DIR_LOCK, what=f"state directory {state_dir}", owner=OWNER)]
    by_key: dict[str, str] = {}  # the same disk named twice (a link, a loop over an image given too) is one
    for disk in disks or node_disks():
        try:
            key = disk_key(disk)
        except BlockDeviceError as error:
            if not disks or error.errno in (errno.ENOENT, errno.ENOTDIR):
                continue  # gone, or a node disk that cannot be looked at: discovery skips it and says so
            for lock in locks:  # a loop device whose file cannot be told may be another run's disk
                lock.release()
            raise
        by_key.setdefault(key, disk)
    try:
        for key in sorted(by_key):  # one order for all: two runs given the disks in reverse cannot both fail
            disk = by_key[key]
            locks.append(lock_disk(disk, owner=OWNER))
            _check_no_foreign_view(disk, state_dir)
    except (DiskBusyError, BlockDeviceError):
        for lock in locks:
            lock.release()
        raise
    return locks


def check_private_dir(path: Path, what: str) -> None:
    """Refuse ``path`` unless it is a directory of this user that no one else may write to: another user
    could hold its lock (and keep every run out) or swap the files in it.

    Raises:
        BlockDeviceError: naming ``what`` and ``path``.
    """
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise BlockDeviceError(
            errno.EPERM,
            f"the {what} {path} is not a directory of this user that only it may write to "
            f"(owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o})",
        )


def _check_no_foreign_view(disk: str, state_dir: Path) -> None:
    """Refuse a disk whose bytes a live FUSE server serves that is not a view of ``state_dir`` (which this run
    adopts): a run killed by SIGKILL, or stopped with a view it could not release, leaves its servers and
    mounts up but its lock released, and a second instance would open every volume on it again.

    Raises:
        DiskBusyError: naming the server, its volume and its view.
    """
    from volumed.storage.activation import fuse_servers_over

    own = os.path.join(os.path.realpath(state_dir / "fuse"), "")
    for use in fuse_servers_over(disk):
        if not os.path.realpath(use.mountpoint).startswith(own) or not use.mountpoint:
            holder = f"the FUSE server (pid {use.pid}) of volume {use.name} at {use.mountpoint or '?'}"
            raise DiskBusyError(
                f"disk {disk} is in use by {holder}, which another state directory's run left up", holder
            )
