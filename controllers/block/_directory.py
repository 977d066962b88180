"""Directory volumes (UserVolumeConfig ``volumeType: directory``): a directory on EPHEMERAL.

As Talos does (``user_volumes.go``, ``mount.go`` ``handleDirectoryMountOperation``): nothing is located,
opened or formatted; the volume is ready once its parent, EPHEMERAL, is mounted, and "mounting" it makes the
directory (mode 0755, owner root:root; an existing one is kept with what it holds, never emptied) and bind
mounts it onto itself, so that it shows as a mount of its own and is unmounted before EPHEMERAL. The SELinux
label Talos sets is left out (volumed sets no labels).

Unlike Talos, whose os.MkdirAll and bind mount follow symbolic links, the path is walked from EPHEMERAL's
mount point one component at a time without following any (`_walk`): a link planted at /var/mnt or
/var/mnt/<name> is refused, so nothing is made or mounted outside EPHEMERAL.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import TYPE_CHECKING, Final

from volumed.resources import VolumeType
from volumed.storage.filesystem import MountConflictError, bind_mount_onto_itself, find_mount

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.resources import VolumeConfigSpec

    from ._services import VolumeServices

#: The volume a directory volume lives on (Talos: under ``/var/mnt``, a directory of EPHEMERAL).
PARENT: Final = "EPHEMERAL"
#: Talos' ``FileMode``, ``UID`` and ``GID`` of a user directory volume.
MODE: Final = 0o755
OWNER: Final = (0, 0)


def is_directory(config: VolumeConfigSpec) -> bool:
    """Whether ``config`` is a directory volume (nothing to locate, open or format)."""
    return config.volume_type == VolumeType.DIRECTORY


def parent_mounted(services: VolumeServices) -> bool:
    """Whether EPHEMERAL is mounted (by this run's Mounter), so its directory volumes can be made."""
    return PARENT in services.mounted_volumes.values()


def parent_target(services: VolumeServices) -> Path | None:
    """Where this run mounted EPHEMERAL (None: it is not mounted)."""
    for request_id, volume_id in services.mounted_volumes.items():
        if volume_id == PARENT and request_id in services.mounts:
            return services.mounts[request_id]
    return None


_OPEN_DIRECTORY: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _is_link(fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _open_component(fd: int, name: str, here: Path, parent: Path, *, make: bool) -> int | None:
    """Open directory ``name`` relative to ``fd`` without following a link (made when missing and ``make``;
    None when missing and not)."""
    try:
        try:
            return os.open(name, _OPEN_DIRECTORY, dir_fd=fd)
        except FileNotFoundError:
            if not make:
                return None
            with contextlib.suppress(FileExistsError):  # made meanwhile: opened below, link or not
                os.mkdir(name, MODE, dir_fd=fd)
            return os.open(name, _OPEN_DIRECTORY, dir_fd=fd)
    except OSError as error:
        # O_NOFOLLOW answers ELOOP for a link, or ENOTDIR with O_DIRECTORY
        if error.errno == errno.ELOOP or (error.errno == errno.ENOTDIR and _is_link(fd, name)):
            raise MountConflictError(
                f"{here} is a symbolic link: a directory volume is made only inside {PARENT} ({parent}),"
                " never through a link (volumed does not follow it, Talos does)"
            ) from None
        if error.errno == errno.ENOTDIR:
            raise MountConflictError(f"target path {here} is not a directory") from None
        raise


def _walk(parent: Path, target: Path, *, make: bool) -> tuple[int, int] | None:
    """Open ``target`` from ``parent`` (EPHEMERAL's mount point) one component at a time, each relative to
    the last and never through a symbolic link (``O_NOFOLLOW | O_DIRECTORY``); a missing one is made (mode
    0755) when ``make``, else None is returned. Returns the open descriptors of ``parent`` and ``target``
    (the caller closes them).

    Raises:
        MountConflictError: ``target`` is not below ``parent``, or a component is a symbolic link or not a
            directory (nothing is made past it).
    """
    try:
        parts = target.relative_to(parent).parts
    except ValueError:
        parts = ()
    if not parts or ".." in parts:
        raise MountConflictError(f"target path {target} is not below {PARENT}'s mount point {parent}")
    top = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fd, kept = top, False
    try:
        for index, name in enumerate(parts):
            opened = _open_component(fd, name, parent.joinpath(*parts[: index + 1]), parent, make=make)
            if opened is None:
                return None
            if fd != top:
                os.close(fd)
            fd = opened
        kept = True
        return top, fd
    finally:
        if not kept:
            if fd != top:
                os.close(fd)
            os.close(top)


def directory_refusal(target: Path, parent: Path) -> str | None:
    """Why the directory volume at ``target`` cannot be made below ``parent`` now (a symbolic link or a
    non-directory in its path), or None; nothing is made (blocking)."""
    try:
        opened = _walk(parent, target, make=False)
    except MountConflictError as error:
        return str(error)
    if opened is not None:
        for fd in opened:
            os.close(fd)
    return None


def directory_problem(services: VolumeServices, mount_target: str) -> str | None:
    """Why the directory volume at ``mount_target`` cannot be made in EPHEMERAL as mounted now
    (`directory_refusal`), or None (blocking)."""
    parent = parent_target(services)
    if parent is None:
        return f"{PARENT} is not mounted"
    return directory_refusal(services.target(mount_target), parent)


def mount_directory(target: Path, parent: Path | None) -> bool:
    """Make ``target`` a directory with Talos' mode and owner below ``parent``, EPHEMERAL's mount point,
    through no symbolic link (`_walk`), and bind mount it onto itself (blocking, idempotent). Returns whether
    it mounted (False: its bind mount is there already).

    Raises:
        MountConflictError: EPHEMERAL is not mounted, ``target`` is not a directory below it, a component of
            its path is a symbolic link, or another filesystem is mounted there.
        ToolError: mount(2) refused the bind mount.
    """
    if parent is None:
        raise MountConflictError(f"{PARENT} is not mounted: the directory {target} is not made")
    opened = _walk(parent, target, make=True)
    assert opened is not None
    top, fd = opened
    try:
        os.fchmod(fd, MODE)  # as Talos' updateTargetSettings: mkdir's mode is cut by the umask
        info = os.fstat(fd)
        if (info.st_uid, info.st_gid) != OWNER:
            os.fchown(fd, *OWNER)
        parent_device = os.fstat(top).st_dev
        current = find_mount(target)
        if current is not None:
            if os.makedev(current.major, current.minor) == parent_device:
                return False  # its bind mount (the same filesystem as EPHEMERAL's)
            raise MountConflictError(
                f"{target} is already a mount point of {current.source} ({current.fstype}), not a directory"
                f" of {PARENT}"
            )
        # through the walked directory's descriptor: a link swapped into the path since the walk is not
        # followed (mount(8) given the path would walk it again)
        bind_mount_onto_itself(fd)
        return True
    finally:
        os.close(fd)
        os.close(top)
