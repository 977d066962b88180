"""What the block controllers hold between reconciles: open volumes, activations, loop devices and mounts.

Resources say what is true; this object owns the handles behind it (volume keys, FUSE servers, loop devices,
swap turned on) and tears them all down at shutdown, in order: unmount and swapoff, then deactivate, then
detach. A handle is forgotten only once it is released: a mount whose umount failed (target busy) is still
known, so it is retried, and its volume is not closed under it (nor one whose swapoff failed).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import structlog

from volumed.storage.activation import ActivationConflictError, DataSegment, mapping_name
from volumed.storage.filesystem import find_mount, mounts_of_device, swap_off, swap_on, umount
from volumed.storage.loop import (
    LoopError,
    attach,
    detach,
    find_attachments,
    loop_backing_of,
    pinned_backing,
    read_loop_device,
    set_size_limit,
)

if TYPE_CHECKING:
    from collections.abc import Collection

    from volumed.storage.activation import Activator, BackendChoice, BackendName
    from volumed.storage.loop import LoopDevice, LoopPin
    from volumed.storage.luks2 import VolumeKey

    from ._encryption import Location, OpenedVolume

log = structlog.get_logger(__name__)

SHUTDOWN_UNMOUNT_RETRY = 1.0
"""Seconds a shutdown waits before it tries a busy mount again (a process may be closing its files)."""


@dataclass
class OpenVolume:
    """A volume we unlocked this run: how it opened (with the key we hold) and the device it is active as.

    ``keys_digest`` identifies the key configuration the slots were last synced to ("" = not yet synced).
    ``ignored_flags``: what the mapping runs without (fuse), read once when it was made: an active mapping
    keeps its flags, so a later pass need not ask the backend again.
    """

    location: Location
    result: OpenedVolume
    device: str
    keys_digest: str
    sync_kdf_runs: int = 0
    ignored_flags: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"OpenVolume(device={self.device!r}, {self.result!r})"


def read_data_segment(location: Location) -> DataSegment:
    """The LUKS2 data segment of ``location`` as an activation backend needs it (blocking)."""
    from volumed.storage.luks2 import Luks2Volume  # imported on first use (see _encryption._open)

    with Luks2Volume.open(
        location.path, offset=location.offset, size=location.size, read_only=True
    ) as volume:
        segment = volume.segment
        size = volume.data_size // segment.sector_size * segment.sector_size
        return DataSegment(
            device=location.path,
            offset=location.offset + segment.offset,
            size=size,
            sector_size=segment.sector_size,
            iv_tweak=segment.iv_tweak,
            cipher=segment.encryption,
            luks_uuid=volume.uuid,
        )


def _select_activator(backend: BackendChoice, *, runtime_dir: Path) -> Activator:
    """The backend's activator, its code imported here, in the worker thread: only the chosen backend's."""
    from volumed.storage.activation import select_activator

    return select_activator(backend, runtime_dir=runtime_dir)


def _activate_or_grow(
    activator: Activator, name: str, segment: DataSegment, volume_key: VolumeKey, flags: tuple[str, ...]
) -> str:
    """Activate; a mapping of this very segment left active at a smaller size is grown first (blocking).

    That is what a grow cut short leaves when volumed starts again without a reboot: the partition (and so
    the dynamic segment) grew, the mapping did not. ``resize`` refuses a mapping of another segment.
    """
    try:
        return activator.activate(name, segment, volume_key.material, flags=flags)
    except ActivationConflictError:
        status = activator.status(name)
        wanted = segment.size
        if not status.active or status.size is None or wanted is None or status.size >= wanted:
            raise
    old = status.size
    activator.resize(name, segment, volume_key.material)
    log.info("active mapping grown to its segment", mapping=name, old_size=old, new_size=wanted)
    return activator.activate(name, segment, volume_key.material, flags=flags)


def left_attached(
    path: str, offset: int, size: int, held: set[str], *, read_only: bool = False
) -> LoopDevice | None:
    """A loop device over exactly these bytes of ``path`` that an earlier run of volumed attached as this one
    would (``read_only`` as asked, no autoclear) and this run does not hold, or None (blocking).

    A run killed and started again without a reboot finds its loop devices still attached, with swap or a
    filesystem on them: a second device over the same bytes would turn swap on twice over them (each area
    overwriting the other's pages) or stack a second mount. The file is matched by the device and inode the
    kernel reports, not only by the name sysfs shows. Only a device volumed attached is taken (the kernel
    keeps its mark, `LoopBacking.attached_by_volumed`): another program's over the same bytes (losetup,
    ``mount -o loop``) was adopted, resized and detached at stop. An unmarked device is taken only as the
    volumed from before the mark left it (`_attached_before_the_mark`: exactly these bytes), never resized.

    A device over the start of these bytes with a smaller size limit is the one a killed run left before
    the volume's partition grew (a grow cut short, or a run whose loop device kept the old size): it is
    adopted and given the new size (the filesystem on it, mounted or not, is then grown as usual); a second
    device over the same bytes would be refused the mount (the same filesystem is mounted from the first).

    Raises:
        LoopError: (EBUSY) nothing of volumed's to adopt, and another program's loop device starts at these
            bytes: it is left as it is, and no second device may be attached over them.
    """
    try:
        wanted = os.stat(path)
    except OSError:
        return None
    found = find_attachments(path, offset=offset)
    foreign: list[str] = []
    for device in sorted(found, key=lambda d: d.size_limit != size):  # the exact size first
        if device.path in held:
            continue
        try:
            backing = loop_backing_of(device.path)
        except LoopError:
            continue
        if backing is None or (backing.device, backing.inode) != (wanted.st_dev, wanted.st_ino):
            continue
        if not backing.attached_by_volumed:
            if not _attached_before_the_mark(device, offset, size, read_only=read_only):
                foreign.append(device.path)
                continue
            log.info("adopted a loop device of a volumed from before the ownership mark", device=device.path)
            return device
        if device.read_only != read_only or device.autoclear:
            continue
        if device.size_limit != size and not 0 < device.size_limit < size:
            continue
        if device.size_limit == size:
            return device
        try:
            resized = set_size_limit(device, size)
        except LoopError as error:
            log.warning(
                "cannot resize a loop device left by an earlier run", device=device.path, error=str(error)
            )
            continue
        log.info(
            "resized a loop device left by an earlier run",
            device=device.path,
            old=device.size_limit,
            new=size,
        )
        return resized
    if foreign:
        raise LoopError(
            errno.EBUSY,
            f"{', '.join(foreign)} (over {path} from offset {offset}) was not attached by volumed: another"
            " program's loop device over the volume's bytes is left as it is, and no second one is attached"
            f" over them; {_how_to_free(foreign)} for the volume to go on",
        )
    return None


def _attached_before_the_mark(device: LoopDevice, offset: int, size: int, *, read_only: bool) -> bool:
    """Whether an unmarked loop device is one a volumed from before the ownership mark (fb2d38e) left: that
    one attached every device as this one does, without the mark, and a restart across the upgrade without a
    reboot finds them all mounted at the volumes' targets. Only the rule those versions adopted by is taken:
    exactly the volume's offset and size limit, no autoclear, ``read_only`` as asked; such a device is never
    resized (another program's device of a smaller size stays a conflict)."""
    return (
        not device.autoclear
        and device.read_only == read_only
        and (device.offset, device.size_limit) == (offset, size)
    )


def _how_to_free(devices: list[str]) -> str:
    """Advice that works for the devices: ``losetup -d`` on a mounted device only sets autoclear."""
    targets: list[str] = []
    for device in devices:
        try:
            targets += [m.target for m in mounts_of_device(device)]
        except OSError:
            continue
    detach_them = f"detach it (losetup -d {' '.join(devices)})"
    if not targets:
        return detach_them
    return f"unmount it (umount {' '.join(targets)}) and {detach_them}"


@dataclass(frozen=True)
class LeftMount:
    """A mount an earlier run of volumed left at a volume's target (`left_mount`): ``device`` is its source
    (``/dev/loopN`` or a partition's node), ``loop`` the loop device's attachment when it is one."""

    target: Path
    device: str
    read_only: bool
    loop: LoopDevice | None

    def describe(self) -> str:
        """The device and what it maps, for messages: ``/dev/loop3 (read-write, d.img at offset 1048576)``."""
        mode = "read-only" if self.read_only else "read-write"
        if self.loop is None:
            return f"{self.device} ({mode})"
        return f"{self.device} ({mode}, {self.loop.backing_file} at offset {self.loop.offset})"

    def is_device(self, path: str) -> bool:
        """Whether ``path`` is the block device mounted here (by device number)."""
        try:
            st = os.stat(path)
        except OSError:
            return False
        return stat.S_ISBLK(st.st_mode) and st.st_rdev == _rdev_of(self.device)


def _rdev_of(device: str) -> int:
    try:
        return os.stat(device).st_rdev
    except OSError:
        return -1


_SYS_DEV_BLOCK = Path("/sys/dev/block")


def left_mount(
    target: Path, devices: Collection[str], held: Collection[str], mine: Collection[Path]
) -> LeftMount | None:
    """The mount at ``target`` when an earlier run of volumed left it there (killed, started again without a
    reboot), else None (nothing mounted there, a mount of this run, or something an operator mounted)
    (blocking).

    An earlier run's is a mount of one of ``devices`` (the disks and volumes volumed was given: a partition's
    node), or of a loop device volumed attached (no autoclear, volumed's mark) over one of those that are
    image files and that this run does not hold (``held``). ``mine``: the targets this run mounted.
    """
    if target in mine:
        return None
    mounted = find_mount(target)
    if mounted is None:
        return None
    try:
        name = os.path.basename(os.path.realpath(_SYS_DEV_BLOCK / f"{mounted.major}:{mounted.minor}"))
    except OSError:
        return None
    device = f"/dev/{name}"
    read_only = "ro" in mounted.options
    if re.fullmatch(r"loop\d+", name):
        try:
            attached = read_loop_device(device)
            backing = loop_backing_of(device) if attached is not None else None
        except LoopError:
            return None
        if attached is None or backing is None or attached.autoclear or device in held:
            return None
        if not backing.attached_by_volumed:  # another program's, mounted there: a conflict, never released
            return None
        for path in devices:
            try:
                st = os.stat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == (backing.device, backing.inode):
                return LeftMount(target, device, read_only, attached)
        return None
    number = os.makedev(mounted.major, mounted.minor)
    for path in devices:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISBLK(st.st_mode) and st.st_rdev == number:
            return LeftMount(target, path, read_only, None)
    return None


def release_left_mount(left: LeftMount) -> None:
    """Unmount a mount an earlier run left, then detach its loop device unless it is mounted elsewhere too
    (blocking).

    Raises:
        FilesystemError: the umount failed (a process has a file open there: "target is busy").
    """
    umount(left.target)
    log.info("unmounted a mount left by an earlier run", target=str(left.target), device=left.device)
    if left.loop is None:
        return
    try:
        if mounts_of_device(left.loop.path):
            return
        detach(left.loop)
    except OSError as error:
        log.warning(
            "cannot detach a loop device left by an earlier run", device=left.device, error=str(error)
        )
        return
    log.info("detached a loop device left by an earlier run", device=left.device)


class VolumeServices:
    """Handles shared by VolumeFormatter and Mounter for one `volumed run`.

    Args:
        backend: activation backend (``auto``, ``dm`` or ``fuse``).
        root: the directory mount targets are under (``/`` on a real node).
        runtime_dir: where the fuse backend keeps its views and server state.
    """

    def __init__(self, *, backend: BackendChoice = "auto", root: Path = Path("/"), runtime_dir: Path) -> None:
        self.backend: BackendChoice = backend
        self.root = root
        self.runtime_dir = runtime_dir
        self.opened: dict[str, OpenVolume] = {}
        self.loops: dict[str, LoopDevice] = {}
        self.loop_pins: dict[str, LoopPin] = {}
        """Volume id -> the file its loop device mapped when it was taken (`keep_loop`): checked again at the
        detach, so a device another program reattached to the number since is left alone."""
        self.mounts: dict[str, Path] = {}
        """Mounts made this run and not yet unmounted: request id -> target."""
        self.mounted_volumes: dict[str, str] = {}
        """Request id -> the volume mounted for it (a volume still mounted is not closed at shutdown)."""
        self.swaps: dict[str, str] = {}
        """Volume id -> the device swap was turned on on this run (turned off before its volume is closed)."""
        self.left_mounts: dict[str, LeftMount] = {}
        """Volume id -> a mount an earlier run left at its target that could not be replaced (in use):
        unmounted at shutdown, as this run's mounts are, so the mounts under it (EPHEMERAL) can go too."""
        self._activator: Activator | None = None
        self._lock = anyio.Lock()
        self.provisioning_lock = anyio.Lock()
        """Held while a partition table is read, edited and written (volumes of a wave converge at once)."""

    def __repr__(self) -> str:
        return (
            f"VolumeServices(backend={self.backend!r}, root={str(self.root)!r}, open={sorted(self.opened)})"
        )

    def target(self, mount_target: str) -> Path:
        """The host path of a mount target (``/var/mnt/data`` under the configured root)."""
        return self.root / mount_target.lstrip("/")

    @property
    def chosen_backend(self) -> BackendName | None:
        """The backend of this run's activations, once the first one chose it."""
        return None if self._activator is None else self._activator.backend

    async def activator(self) -> Activator:
        """The activation backend, chosen on first use (raises BackendUnavailableError with the reasons)."""
        async with self._lock:
            if self._activator is None:
                self._activator = await anyio.to_thread.run_sync(
                    partial(_select_activator, self.backend, runtime_dir=self.runtime_dir)
                )
            return self._activator

    async def activate(
        self, volume_id: str, location: Location, volume_key: VolumeKey, flags: tuple[str, ...] = ()
    ) -> str:
        """Make the decrypted block device of an unlocked volume (idempotent) and return its path.

        ``flags``: dm-crypt flags (``allow_discards``, perf options; see ``activation_flags``).
        """
        activator = await self.activator()
        segment = await anyio.to_thread.run_sync(read_data_segment, location)
        return await anyio.to_thread.run_sync(
            partial(_activate_or_grow, activator, mapping_name(volume_id), segment, volume_key, flags)
        )

    async def ignored_flags(self, volume_id: str) -> tuple[str, ...]:
        """The dm-crypt flags the active mapping of ``volume_id`` was asked for and runs without (fuse)."""
        activator = await self.activator()
        status = await anyio.to_thread.run_sync(activator.status, mapping_name(volume_id))
        return status.ignored_flags

    async def is_active(self, volume_id: str) -> bool:
        activator = await self.activator()
        return await anyio.to_thread.run_sync(activator.is_active, mapping_name(volume_id))

    async def close(self, volume_id: str) -> None:
        """Deactivate an open volume (absent counts as closed) and forget its key, once it is deactivated
        (a mapping in use stays known, so it is closed again later)."""
        if volume_id not in self.opened:
            return
        activator = await self.activator()
        await anyio.to_thread.run_sync(activator.deactivate, mapping_name(volume_id))
        self.opened.pop(volume_id, None)
        log.info("closed volume", volume=volume_id)

    async def _close_at_shutdown(self, volume_id: str) -> None:
        try:
            await self.close(volume_id)
        except Exception as error:
            log.error("close failed at shutdown", volume=volume_id, error=str(error))

    async def loop_for(self, volume_id: str, path: str, offset: int, size: int) -> str:
        """A block device for an unencrypted region of an image file (a loop device with offset and size)."""
        existing = self.loops.get(volume_id)
        if existing is not None:
            return existing.path
        if offset == 0 and await anyio.Path(path).is_block_device():
            return path
        held = {device.path for device in self.loops.values()}
        left = await anyio.to_thread.run_sync(left_attached, path, offset, size, held)
        if left is not None:
            await self.keep_loop(volume_id, left)
            log.info("adopted a loop device left by an earlier run", volume=volume_id, device=left.path)
            return left.path
        device = await anyio.to_thread.run_sync(partial(attach, path, offset=offset, size_limit=size))
        await self.keep_loop(volume_id, device)
        return device.path

    async def keep_loop(self, volume_id: str, device: LoopDevice) -> None:
        """Hold ``device`` for ``volume_id`` (detached at shutdown), pinned to the file it maps now."""
        self.loops[volume_id] = device
        pin = await anyio.to_thread.run_sync(pinned_backing, device)
        if pin is None:
            self.loop_pins.pop(volume_id, None)
        else:
            self.loop_pins[volume_id] = pin

    def mounted(self, request_id: str, volume_id: str, target: Path) -> None:
        """Record a mount made for ``request_id``."""
        self.mounts[request_id] = target
        self.mounted_volumes[request_id] = volume_id

    async def unmount(self, request_id: str) -> None:
        """Unmount a mount made this run. Raises the umount error ("target is busy"): the mount is then kept,
        to be tried again; it is forgotten only once unmounted (or found unmounted)."""
        target = self.mounts.get(request_id)
        if target is None:
            return
        await anyio.to_thread.run_sync(umount, target)
        self.mounts.pop(request_id, None)
        self.mounted_volumes.pop(request_id, None)
        log.info("unmounted", target=str(target))

    async def swap_on(self, volume_id: str, device: str) -> None:
        """Turn swap on on ``device``, the ready swap volume ``volume_id`` (raises swapon's error)."""
        turned_on = await anyio.to_thread.run_sync(swap_on, device)
        self.swaps[volume_id] = device
        if turned_on:
            log.info("swap on", volume=volume_id, device=device)
        else:  # an earlier run's, left on over the same bytes: taken as ours, turned off at stop
            log.info("swap was already on over these bytes; adopted", volume=volume_id, device=device)

    async def swap_off(self, volume_id: str) -> None:
        """Turn swap off on a volume this run swapped on; forgotten only once off (raises swapoff's error)."""
        device = self.swaps.get(volume_id)
        if device is None:
            return
        await anyio.to_thread.run_sync(swap_off, device)
        self.swaps.pop(volume_id, None)
        log.info("swap off", volume=volume_id, device=device)

    async def _unmount_all(self, *, last: bool) -> None:
        """Unmount every mount, deepest first; failures are logged (as errors on the ``last`` try)."""
        for request_id in sorted(self.mounts, key=lambda r: -len(self.mounts[r].parts)):
            try:
                await self.unmount(request_id)
            except Exception as error:  # keep unmounting the rest
                report = log.error if last else log.warning
                report("unmount failed at shutdown", request=request_id, error=str(error), retrying=not last)

    async def _release_left_mounts(self, *, last: bool) -> None:
        """Unmount the mounts earlier runs left (`left_mounts`); failures are logged."""
        for volume_id, left in list(self.left_mounts.items()):
            try:
                await anyio.to_thread.run_sync(release_left_mount, left)
            except Exception as error:  # keep unmounting the rest
                report = log.error if last else log.warning
                report("a mount left by an earlier run is in use at shutdown", volume=volume_id,
                       target=str(left.target), error=str(error), retrying=not last)  # fmt: skip
            else:
                self.left_mounts.pop(volume_id, None)

    async def close_all(self) -> None:
        """Shutdown: unmount (the mounts earlier runs left, `left_mounts`, then this run's, deepest first),
        deactivate, detach. Errors are logged; everything is tried.

        A mount still busy is tried again once after ``SHUTDOWN_UNMOUNT_RETRY`` seconds; if it still is, it is
        left mounted and its volume open (mapping and loop device): closing the device under a mounted
        filesystem would fail its writers, and a reboot clears both.
        """
        with anyio.CancelScope(shield=True):
            await self._release_left_mounts(last=False)
            await self._unmount_all(last=False)
            if self.mounts or self.left_mounts:
                await anyio.sleep(SHUTDOWN_UNMOUNT_RETRY)
                await self._release_left_mounts(last=True)
                await self._unmount_all(last=True)
            for volume_id in list(self.swaps):
                try:
                    await self.swap_off(volume_id)
                except Exception as error:  # its pages do not fit in memory: the device stays in use
                    log.error(
                        "swapoff failed at shutdown; its volume stays open",
                        volume=volume_id,
                        error=str(error),
                    )
            kept = set(self.swaps)
            for request_id, target in self.mounts.items():
                volume_id = self.mounted_volumes.get(request_id, "")
                kept.add(volume_id)
                log.error(
                    "left mounted at shutdown: its target is busy; its volume stays open",
                    volume=volume_id,
                    target=str(target),
                )
            # Side by side: each close is a device-mapper removal (or a FUSE view's) of its own, and one after
            # another they were most of a shutdown (10 volumes: 3.3 s of 6.3 s in the QEMU guest, TCG).
            async with anyio.create_task_group() as closing:
                for volume_id in [v for v in self.opened if v not in kept]:
                    closing.start_soon(self._close_at_shutdown, volume_id)
            for volume_id, device in [(v, d) for v, d in self.loops.items() if v not in kept]:
                expected = self.loop_pins.pop(volume_id, None)
                try:
                    await anyio.to_thread.run_sync(partial(detach, device, expected=expected))
                except LoopError as error:
                    if error.errno == errno.ESTALE:  # detached by someone since, the number taken again
                        log.warning("loop device left alone at shutdown", volume=volume_id, error=str(error))
                    else:
                        log.error("loop detach failed at shutdown", volume=volume_id, error=str(error))
                except OSError as error:
                    log.error("loop detach failed at shutdown", volume=volume_id, error=str(error))
                self.loops.pop(volume_id, None)


def ensure_directory(path: Path) -> None:
    """mkdir -p with mode 0755 (mount targets)."""
    os.makedirs(path, mode=0o755, exist_ok=True)
