"""Directory volumes (UserVolumeConfig ``volumeType: directory``): a directory on EPHEMERAL.

As Talos does (``user_volumes.go``, ``mount.go`` ``handleDirectoryMountOperation``): nothing is located,
opened or formatted; the volume is ready once its parent, EPHEMERAL, is mounted, and "mounting" it makes the
directory (mode 0755, owner root:root; an existing one is kept with what it holds, never emptied) and bind
mounts it onto itself, so that it shows as a mount of its own and is unmounted before EPHEMERAL. The SELinux
label Talos sets is left out (volumed sets no labels).
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Final

from volumed.resources import VolumeType
from volumed.storage.filesystem import MountConflictError, find_mount, mount

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


def mount_directory(target: Path) -> bool:
    """Make ``target`` a directory with Talos' mode and owner and bind mount it onto itself (blocking,
    idempotent). Returns whether it mounted (False: its bind mount is there already).

    Raises:
        MountConflictError: ``target`` is not a directory, or another filesystem is mounted there.
        ToolError: mount(8) failed.
    """
    try:
        os.mkdir(target, MODE)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(target).st_mode):
            raise MountConflictError(f"target path {target} is not a directory") from None
    os.chmod(target, MODE)  # as Talos' updateTargetSettings: mkdir's mode is cut by the umask
    info = os.stat(target)
    if (info.st_uid, info.st_gid) != OWNER:
        os.chown(target, *OWNER)
    current = find_mount(target)
    if current is not None:
        if os.makedev(current.major, current.minor) == os.stat(target.parent).st_dev:
            return False  # its bind mount (the same filesystem as its parent's)
        raise MountConflictError(
            f"{target} is already a mount point of {current.source} ({current.fstype}), not a directory of"
            f" {PARENT}"
        )
    return mount(target, target, options=("bind",))
