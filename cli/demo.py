"""`volumed demo`: the volume subsystem on disk images it creates, booted twice, with the result shown."""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, cast

import click

if TYPE_CHECKING:
    from volumed.storage.activation import BackendChoice

DEMO_CONFIG = """\
# STATE and EPHEMERAL encrypted with a key derived from the node UUID; the first boot makes their partitions
# on the system disk (the one with META), as Talos does: STATE 100 MiB, EPHEMERAL the rest (at least 2 GiB).
# A user volume on a second, blank disk (it gets a GPT) with a static passphrase locked to STATE (its key is
# useless without the salt kept on STATE).
apiVersion: v1alpha1
kind: VolumeConfig
name: STATE
encryption:
  provider: luks2
  keys:
    - nodeID: {}
      slot: 0
  pbkdf: {type: argon2id, memory: 65536, iterations: 4, parallel: 2}
---
apiVersion: v1alpha1
kind: VolumeConfig
name: EPHEMERAL
encryption:
  provider: luks2
  keys:
    - nodeID: {}
      slot: 0
  pbkdf: {type: argon2id, memory: 65536, iterations: 4, parallel: 2}
---
apiVersion: v1alpha1
kind: UserVolumeConfig
name: data
provisioning:
  diskSelector:
    match: "!system_disk"
  minSize: 64MiB
  maxSize: 128MiB
filesystem:
  type: ext4
encryption:
  provider: luks2
  keys:
    - static:
        passphrase: demo-passphrase
      slot: 0
      lockToSTATE: true
  pbkdf: {type: argon2id, memory: 65536, iterations: 4, parallel: 2}
"""

MIB = 1024 * 1024
#: Talos' installer partitions take 2104 MiB; STATE 100 MiB and EPHEMERAL at least 2 GiB need the rest.
NODE_IMAGE_SIZE = 5 * 1024 * MIB
DATA_IMAGE_SIZE = 256 * MIB


DEMO_FILES = ("node.img", "data.img", "config.yaml", "node-uuid")
"""The files the demo makes in its workdir; an earlier run's are removed (never followed) and made anew."""


class DemoWorkdirError(Exception):
    """The workdir is not private to the user running the demo (or not a directory); nothing was written."""


def _refuse(workdir: Path, why: str) -> NoReturn:
    raise DemoWorkdirError(f"demo workdir {workdir} {why}; refusing to use it")


def real_workdir(workdir: Path) -> Path:
    """``workdir`` made absolute with its parent's symlinks resolved; the workdir itself is never followed.

    The folders checked by :func:`check_workdir` are then the ones every later use of the path goes through.
    """
    absolute = Path(os.path.abspath(workdir))
    if absolute.parent == absolute:
        return absolute
    return Path(os.path.realpath(absolute.parent)) / absolute.name


def _trusted(uid: int) -> bool:
    return uid in (0, os.geteuid())


def _safe_parents(workdir: Path) -> None:
    """Check every folder from ``/`` down to ``workdir``'s parent, making the missing ones (0755, ours).

    Whoever may write to a parent folder can rename the checked workdir away and put their own in its place
    after the check (the demo then boots with their config and mounts STATE where their symlinks point). So
    each parent must be owned by this user or root and writable by no one else, unless it is sticky (as
    ``/tmp``): there only an entry's owner can move it, and the next folder is checked to be ours or root's.
    """
    folder = Path("/")
    for name in (*workdir.parts[1:-1], None):
        try:
            st = os.lstat(folder)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder, 0o755)
            st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode):
            _refuse(workdir, f"has a parent {folder} that is not a directory")
        if not _trusted(st.st_uid):
            _refuse(
                workdir, f"has a parent folder {folder} owned by uid {st.st_uid}, who could swap the workdir"
            )
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
            _refuse(
                workdir,
                f"has a parent folder {folder} that others may write to (mode {stat.S_IMODE(st.st_mode):04o},"
                " not sticky), who could swap the workdir",
            )
        if name is None:
            return
        folder /= name


def check_workdir(workdir: Path) -> tuple[int, int]:
    """Make ``workdir`` (0700) or accept an existing one only if it and its parents are safe (see
    :func:`_safe_parents`); return its (device, inode) for :func:`check_same_workdir`.

    ``workdir`` must come from :func:`real_workdir`. The images hold STATE's volume key and the node UUID is
    half of every nodeID passphrase, so another user must not own the folder nor be able to plant or swap
    files in it (a ``/tmp/volumed-demo`` made in advance by someone else, with symlinks to root's files, was
    used before). An earlier run's folder is made 0700.

    Raises:
        DemoWorkdirError: naming the folder at fault; nothing was written.
    """
    _safe_parents(workdir)
    with contextlib.suppress(FileExistsError):
        os.mkdir(workdir, 0o700)
    st = os.lstat(workdir)
    if stat.S_ISLNK(st.st_mode):
        _refuse(workdir, "is a symlink")
    if not stat.S_ISDIR(st.st_mode):
        _refuse(workdir, "is not a directory")
    if st.st_uid != os.geteuid():
        _refuse(workdir, f"is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        _refuse(workdir, f"is group- or world-writable (mode {stat.S_IMODE(st.st_mode):04o})")
    identity = (st.st_dev, st.st_ino)
    fd = check_same_workdir(workdir, identity)
    try:
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return identity


def check_same_workdir(workdir: Path, identity: tuple[int, int]) -> int:
    """Open ``workdir`` (never through a symlink) and check it is still the folder checked; return the fd.

    Raises:
        DemoWorkdirError: it was replaced since it was checked.
    """
    try:
        fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        _refuse(workdir, "changed after it was checked")
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != identity:
        os.close(fd)
        _refuse(workdir, "changed after it was checked")
    return fd


def _new_private_file(path: Path, data: bytes = b"", *, size: int = 0) -> None:
    """Create ``path`` afresh, mode 0600: whatever was there is unlinked (a symlink is removed, not followed)
    and the new file is made with O_EXCL | O_NOFOLLOW, so nothing outside the workdir is ever written."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, data)
        if size:
            os.ftruncate(fd, size)
    finally:
        os.close(fd)


def prepare(workdir: Path) -> tuple[Path, list[str], str]:
    """Make the private workdir and the demo's files in it: the disk images, the config and the node UUID.

    Raises:
        DemoWorkdirError: the workdir is another user's, group/world-writable, a symlink or not a directory,
            or a parent folder is another user's or writable by others (not sticky).
    """
    from volumed.storage import disklayout

    workdir = real_workdir(workdir)
    check_workdir(workdir)
    node, data, config, uuid_file = (workdir / name for name in DEMO_FILES)
    _new_private_file(node)  # an empty 0600 file: the image replacing it keeps its mode
    # what Talos' installer leaves (EFI, BIOS, BOOT, META): the first boot provisions STATE and EPHEMERAL
    disklayout.create_disk_image(node, NODE_IMAGE_SIZE, force=True, layout=disklayout.INSTALLER_LAYOUT)
    _new_private_file(data, size=DATA_IMAGE_SIZE)  # blank, sparse: the first boot gives it a GPT
    _new_private_file(config, DEMO_CONFIG.encode())
    node_uuid = str(uuid.uuid4())
    _new_private_file(uuid_file, node_uuid.encode())
    return config, [str(node), str(data)], node_uuid


@click.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/tmp/volumed-demo"),
    show_default=True,
    help="Where the disk images, config and mount root go (recreated): a folder of this user's that no one"
    " else can write to (made 0700 if missing), whose parent folders are this user's or root's and writable"
    " by no one else unless sticky (as /tmp).",
)
@click.option("--backend", type=click.Choice(["auto", "dm", "fuse"]), default="auto", show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="Show the subsystem's log.")
def demo(workdir: Path, backend: str, verbose: bool) -> None:
    """Create two disk images and a config, boot the volume subsystem twice and show what it did.

    The node image has what Talos' installer makes (EFI, BIOS, BOOT, META); the second is blank. First boot:
    STATE (100 MiB) and EPHEMERAL (the rest) are made on the node image, encrypted (nodeID keys) and
    formatted; the blank disk gets a GPT and the user volume's partition (128 MiB), encrypted with a key
    locked to STATE; all three are mounted under WORKDIR/root, a file is written on each and the partition
    tables are shown. Second boot: everything opens again and the files are read back.
    """
    import anyio

    from ._demo_run import boot_twice
    from ._logging import configure_logging

    configure_logging(verbose=verbose)
    if not verbose:
        import logging

        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    # Absolute (the FUSE servers run from /: a relative state dir would not be found) and through the real
    # parent folders that are checked.
    workdir = real_workdir(workdir)
    try:
        identity = check_workdir(workdir)
        config, disks, node_uuid = prepare(workdir)
        os.close(check_same_workdir(workdir, identity))  # the folder checked is the one the boots use
    except DemoWorkdirError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(1) from None
    except OSError as exc:  # a folder where a demo file goes, a full disk: say so without a traceback
        click.echo(f"Error: demo workdir {workdir}: {exc.filename or ''}: {exc.strerror}", err=True)
        raise SystemExit(1) from None
    os.umask(0o077)  # the state and mount folders the subsystem makes are the demo user's only
    click.echo(f"disk images: {', '.join(disks)}")
    click.echo(f"config: {config}  node UUID: {node_uuid}")
    ok = anyio.run(boot_twice, workdir, config, disks, node_uuid, cast("BackendChoice", backend))
    raise SystemExit(0 if ok else 1)
