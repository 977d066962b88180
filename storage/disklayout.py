"""The Talos system disk layouts: making disk images, and wiping system partitions.

Facts from Talos v1.12 (siderolabs/talos, ``cmd/installer/pkg/install/install.go`` ``createPartitions``,
``internal/pkg/partition/partition.go``, ``pkg/machinery/imager/quirks/partitions.go``): the installer (GRUB
boot) lays out EFI (100 MiB, EFI system type), BIOS (1 MiB, BIOS boot type, legacy-BIOS-bootable attribute),
BOOT (2000 MiB) and META (1 MiB), and nothing else: STATE (100 MiB) and EPHEMERAL (the rest) are made by
the volume manager at first boot. The older "system" layout (META, STATE, EPHEMERAL, no boot partitions) is
a disk whose first boot already happened, as many tests want it. Partitions other than EFI and BIOS use the
Linux filesystem data type GUID; all are found by their GPT partition names.
Blocking functions: async callers run them in worker threads.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, final

from volumed.storage.blockdev import (
    BlockDeviceError,
    Region,
    data_identity,
    disk_lock_path,
    is_block_device,
    list_block_devices,
    lock_holder,
    read_block_device,
)
from volumed.storage.gpt import (
    BIOS_BOOT,
    DEFAULT_ALIGNMENT,
    EFI_SYSTEM,
    LINUX_FILESYSTEM_DATA,
    InvalidTableError,
    NoPartitionTableError,
    PartitionTable,
    new_table,
    read_partition_table,
    write_partition_table,
)
from volumed.storage.probe import Signature, probe_region, wipe_region

if TYPE_CHECKING:
    import uuid
    from collections.abc import Sequence

MIB: Final = 1024 * 1024
META_LABEL: Final = "META"
STATE_LABEL: Final = "STATE"
EPHEMERAL_LABEL: Final = "EPHEMERAL"
META_SIZE: Final = 1 * MIB
STATE_SIZE: Final = 100 * MIB
#: The smallest EPHEMERAL ``create_disk_image`` accepts; real use wants far more (xfs wants >= 300 MB).
MIN_EPHEMERAL_SIZE: Final = 1 * MIB
#: Talos' EPHEMERAL minSize (``quirks`` ``EphemeralMinSize``): a first boot needs this much after STATE.
TALOS_EPHEMERAL_MIN_SIZE: Final = 2 * 1024 * MIB
#: Labels of the system partitions, in disk order.
SYSTEM_LABELS: Final = (META_LABEL, STATE_LABEL, EPHEMERAL_LABEL)
#: A user volume ``NAME`` is the partition labelled ``u-NAME`` (Talos' UserVolumeConfig).
USER_VOLUME_PREFIX: Final = "u-"
#: Talos' installer partitions (GRUB): label, size, type GUID, attribute bits, in disk order.
INSTALLER_PARTITIONS: Final = (
    ("EFI", 100 * MIB, EFI_SYSTEM, 0),
    ("BIOS", 1 * MIB, BIOS_BOOT, 1 << 2),  # bit 2: legacy BIOS bootable
    ("BOOT", 2000 * MIB, LINUX_FILESYSTEM_DATA, 0),
    (META_LABEL, META_SIZE, LINUX_FILESYSTEM_DATA, 0),
)
INSTALLER_LAYOUT: Final = "installer"
SYSTEM_LAYOUT: Final = "system"
LAYOUTS: Final = (INSTALLER_LAYOUT, SYSTEM_LAYOUT)


class DiskLayoutError(Exception):
    """A disk image cannot be made, or a wipe cannot be done, as asked; nothing was changed."""


class DiskImageExistsError(DiskLayoutError, FileExistsError):
    """The image path holds a non-empty file (or is not a regular file) and overwriting was not asked."""


class UnknownLabelError(DiskLayoutError, LookupError):
    """A label to wipe names no partition of the disk; the message lists the labels that exist."""


class DeviceBusyError(DiskLayoutError):
    """A partition to wipe, or an image to replace, is in use (mounted, mapped, claimed or served by FUSE)."""


def talos_table(disk_size: int, *, state_size: int = STATE_SIZE, sector_size: int = 512) -> PartitionTable:
    """A GPT with META (1 MiB), STATE (``state_size``) and EPHEMERAL (the rest), 1 MiB aligned."""
    table = new_table(disk_size, sector_size=sector_size)
    table, _ = table.add_partition(size=META_SIZE, name=META_LABEL, type_guid=LINUX_FILESYSTEM_DATA)
    table, _ = table.add_partition(size=state_size, name=STATE_LABEL, type_guid=LINUX_FILESYSTEM_DATA)
    table, ephemeral = table.add_partition(size=None, name=EPHEMERAL_LABEL, type_guid=LINUX_FILESYSTEM_DATA)
    if ephemeral.size(sector_size) < MIN_EPHEMERAL_SIZE:
        raise DiskLayoutError(f"a disk of {disk_size} bytes leaves no room for EPHEMERAL")
    return table


def installer_table(disk_size: int, *, sector_size: int = 512) -> PartitionTable:
    """A GPT as Talos' installer leaves it: EFI, BIOS, BOOT and META, 1 MiB aligned, the rest free."""
    table = new_table(disk_size, sector_size=sector_size)
    for label, size, type_guid, attributes in INSTALLER_PARTITIONS:
        table, part = table.add_partition(size=size, name=label, type_guid=type_guid)
        if attributes:
            marked = replace(part, attributes=attributes)
            table = replace(
                table, partitions=tuple(marked if p.number == part.number else p for p in table.partitions)
            )
    return table


def largest_allocatable(table: PartitionTable) -> int:
    """Bytes of the largest free gap once its start is aligned up and its end aligned down to 1 MiB.

    That is what a partition taking "all the free space" gets (`PartitionTable.add_partition` with no size).
    """
    ss = table.sector_size
    align = DEFAULT_ALIGNMENT // ss
    best = 0
    for first, last in table.free_ranges():
        start = -(-first // align) * align
        end = (last + 1) // align * align - 1
        if end >= start:
            best = max(best, (end - start + 1) * ss)
    return best


def minimum_disk_size(*, state_size: int = STATE_SIZE, layout: str = SYSTEM_LAYOUT) -> int:
    """The smallest disk a layout fits: 1 MiB lead-in, its partitions and a trailing MiB (the backup GPT).

    The installer layout's free space may then be too small for a first boot: STATE and EPHEMERAL want
    100 MiB + 2 GiB more.
    """
    if layout == INSTALLER_LAYOUT:
        return MIB + sum(size for _, size, _, _ in INSTALLER_PARTITIONS) + MIB
    return MIB + META_SIZE + -(-state_size // MIB) * MIB + MIN_EPHEMERAL_SIZE + MIB


def create_disk_image(
    path: str | os.PathLike[str],
    size: int,
    *,
    state_size: int = STATE_SIZE,
    sector_size: int = 512,
    force: bool = False,
    layout: str = SYSTEM_LAYOUT,
) -> PartitionTable:
    """Make a sparse disk image of ``size`` bytes with a Talos layout; return its table.

    ``layout`` ``"installer"``: what Talos' installer makes (EFI, BIOS, BOOT, META; STATE and EPHEMERAL are
    provisioned at first boot; ``state_size`` is not used). ``"system"`` (the default, for tests): META,
    STATE (``state_size``) and EPHEMERAL, as after a first boot, without boot partitions.

    Refuses (``DiskImageExistsError``) a path that is a non-empty file unless ``force``, and anything that
    is not a regular file (a block device, a directory) always. With ``force`` the old content is dropped.
    The image is built beside the path and moved onto it only when complete, so a failure (no room, a
    size the filesystem cannot hold) leaves an existing file as it was and no new file behind.
    """
    name = os.fspath(path)
    if layout not in LAYOUTS:
        raise DiskLayoutError(f"unknown layout {layout!r} (one of {', '.join(LAYOUTS)})")
    if size % sector_size:
        raise DiskLayoutError(f"disk size {size} is not a multiple of the {sector_size}-byte sector size")
    if layout == INSTALLER_LAYOUT:
        if size < minimum_disk_size(layout=layout):
            raise DiskLayoutError(
                f"disk size {size} is too small: Talos' installer partitions need at least "
                f"{minimum_disk_size(layout=layout)} bytes"
            )
    else:
        if state_size <= 0 or state_size % sector_size:
            raise DiskLayoutError(f"STATE size {state_size} is not a positive multiple of {sector_size}")
        if size < minimum_disk_size(state_size=state_size):
            raise DiskLayoutError(
                f"disk size {size} is too small: the Talos layout with a {state_size}-byte STATE needs at "
                f"least {minimum_disk_size(state_size=state_size)} bytes"
            )
    try:
        st = os.stat(name)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise DiskImageExistsError(
                f"{name} exists and is not a regular file; refusing to write a disk image"
            )
        if st.st_size and not force:
            raise DiskImageExistsError(f"{name} exists and is not empty; pass --force to overwrite it")
        _check_no_fuse_server(f"{name} is in use", name, 0, None)
        _check_not_owned(str(name), str(name))
    table = (
        installer_table(size, sector_size=sector_size)
        if layout == INSTALLER_LAYOUT
        else talos_table(size, state_size=state_size, sector_size=sector_size)
    )
    target = os.path.realpath(name)  # replace the file a symlink names, not the symlink
    temp = _new_temp_file(name, target, stat.S_IMODE(st.st_mode) if st is not None else None)
    try:
        _build_image(name, temp, size, table)
    except BaseException:
        _remove_quietly(temp)
        raise
    return table


def _build_image(name: str, temp: str, size: int, table: PartitionTable) -> None:
    """Make ``temp`` a ``size``-byte image holding ``table`` and move it onto ``name``'s file."""
    try:
        os.truncate(temp, size)  # the new image is all holes
    except OSError as exc:
        raise DiskLayoutError(f"cannot make {name} {size} bytes long: {exc.strerror}") from None
    try:
        write_partition_table(temp, table)
        os.replace(temp, os.path.realpath(name))
    except OSError as exc:
        raise DiskLayoutError(f"cannot write {name}: {exc.strerror}") from None


def _new_temp_file(name: str, target: str, mode: int | None) -> str:
    """Create an empty file beside ``target`` (same filesystem, so it can be renamed onto it); its path.

    A new file gets the umask's permissions, as ``open`` would give it; ``mode``, an existing image's
    permissions, is kept instead. Errors name ``name``, the path the caller asked for.
    """
    directory, base = os.path.split(target)
    for _ in range(100):
        temp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise DiskLayoutError(f"cannot create {name}: {exc.strerror}") from None
        try:
            if mode is not None:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
        return temp
    raise DiskLayoutError(f"cannot create {name}: no free temporary name in {directory}")


def _remove_quietly(path: str) -> None:
    """Remove a temporary file after a failure; the failure, not this, is what gets reported."""
    with contextlib.suppress(OSError):
        os.unlink(path)


def is_volume_label(label: str) -> bool:
    """Whether volumed locates a volume by this partition label (a system partition or a user volume)."""
    return label in SYSTEM_LABELS or label.startswith(USER_VOLUME_PREFIX)


def read_volume_table(device: str | os.PathLike[str]) -> PartitionTable:
    """The disk's GPT, refused (``InvalidTableError``) when it is invalid or when two partitions carry a
    label volumed locates a volume by: which of two STATEs is STATE cannot be told, and taking the first
    would open or wipe the wrong one. Other duplicate names (two "Linux filesystem") are left alone.

    Raises what ``read_partition_table`` raises.
    """
    name = os.fspath(device)
    table = read_partition_table(name)
    clashes: list[str] = []
    for label in dict.fromkeys(p.name for p in table.partitions if is_volume_label(p.name)):
        same = table.named(label)
        if len(same) > 1:
            listed = " and ".join(f"{p.number} (LBA {p.first_lba}..{p.last_lba})" for p in same)
            every = "both" if len(same) == 2 else "all"
            clashes.append(
                f"GPT partitions {listed} are {every} labelled {label}: which is {label} is ambiguous"
            )
    if clashes:
        raise InvalidTableError(f"disk {name}: {'; '.join(clashes)}", table.partitions)
    return table


@final
@dataclass(frozen=True)
class WipedPartition:
    """One partition ``wipe_system_partitions`` wiped, and the signatures it found there."""

    label: str
    number: int
    path: str
    offset: int
    size: int
    signatures: tuple[Signature, ...]


def _partition_node(device: str, number: int, start: int, size: int) -> str | None:
    """The kernel's device node of partition ``number`` of block device ``device``, if it has one covering
    exactly ``size`` bytes from byte ``start`` (a partition the kernel kept after its entry changed covers
    other bytes: writing through its node would reach past the partition)."""
    name = os.path.basename(os.path.realpath(device))
    try:
        info = read_block_device(name)
    except FileNotFoundError:
        return None
    for part in info.partitions:
        if (part.number, part.start, part.size) == (number, start, size) and os.path.exists(part.dev_path):
            return part.dev_path
    return None


def _loop_devices_over(region: Region) -> list[str]:
    """Loop devices (other than the region's own device) that map any byte of the region.

    Compared by the file the kernel reports each loop device maps (device and inode), not by the path in
    sysfs, which may be deleted or another mount namespace's. A loop device that cannot be told counts as over
    the region: nothing is written when it is not known to be safe.
    """
    target = data_identity(region.path)
    start = target.offset + region.offset
    end = start + region.size
    own = os.path.realpath(region.path)
    users: list[str] = []
    for info in list_block_devices():
        if info.backing_file is None or os.path.realpath(info.dev_path) == own:
            continue
        try:
            loop = data_identity(info.dev_path)
        except BlockDeviceError:
            users.append(info.dev_path)
            continue
        if loop.key != target.key:
            continue
        lo_start = loop.offset
        lo_end = lo_start + (info.backing_size_limit or info.size)
        if lo_start < end and start < lo_end:
            users.append(info.dev_path)
    return users


def check_not_in_use(what: str, region: Region) -> None:
    """Raise ``DeviceBusyError`` (naming ``what``) if the region, a loop device over its bytes, or a FUSE
    server decrypting them holds it: nothing may be written there from under its user.

    ``O_EXCL`` on a block device fails with EBUSY while it (or a partition of it) is mounted, mapped or
    held; loop devices over the same bytes of an image are checked the same way, so a partition mounted
    through its own loop device is not wiped from under the filesystem.
    """
    for path in [region.path, *_loop_devices_over(region)]:
        try:
            probe = region if path == region.path else Region.whole(path)
            probe.open(writable=True, exclusive=True).close()
        except BlockDeviceError as exc:
            if exc.errno == errno.EBUSY:
                raise DeviceBusyError(f"{what} is in use through {path}") from None
            raise
    _check_no_fuse_server(f"{what} is in use", region.path, region.offset, region.size)
    _check_not_owned(what, region.path)


def check_disk_not_owned(device: str) -> None:
    """Raise ``DeviceBusyError`` when a running `volumed run` owns the disk ``device`` is (or is on): the one
    check of every command that writes to a device (wipe, luks, meta), whatever it writes there.

    A loop device whose file the kernel cannot name is refused too: it may be an owned disk's.
    """
    _check_not_owned(device, device)


def _check_not_owned(what: str, path: str) -> None:
    """Raise ``DeviceBusyError`` when a running `volumed run` owns the disk, even with nothing open yet."""
    try:
        lock_path = disk_lock_path(path)
    except BlockDeviceError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return  # nothing there: the command itself says so
        raise DeviceBusyError(
            f"{what}: cannot tell which disk it is, so not whether it is owned ({exc})"
        ) from None
    try:
        owner = lock_holder(lock_path)
    except OSError:
        owner = None  # no lock directory, or no lock file: no owner
    if owner is not None:
        raise DeviceBusyError(f"{what} is on a disk in use by {owner}")


def _check_no_fuse_server(what: str, path: str, offset: int, size: int | None) -> None:
    """Raise ``DeviceBusyError`` when a live FUSE server decrypts these bytes: it holds an image file open
    without any lock the kernel would report, and its volume may be mounted."""
    from volumed.storage.activation import fuse_servers_over

    users = fuse_servers_over(path, offset, size)
    if users:
        use = users[0]
        raise DeviceBusyError(f"{what}: volume {use.name} is active on it (FUSE server PID {use.pid})")


def wipe_system_partitions(device: str | os.PathLike[str], labels: Sequence[str]) -> list[WipedPartition]:
    """Wipe the signatures of the partitions named ``labels`` on a disk image or block device.

    Every label is checked first (``UnknownLabelError``), then every partition is checked for use
    (``DeviceBusyError`` if it, or a loop device over its bytes, is mounted or mapped), and only then is
    anything written: the signatures
    found are erased (as ``wipefs -a``) and the first and last MiB of each partition zeroed. Other
    partitions and the partition table are untouched.

    Raises:
        NoPartitionTableError, CorruptTableError: the device has no readable GPT.
        InvalidTableError: the GPT is invalid or has a volume label twice (``read_volume_table``): where
            the partitions are is not known, so nothing is wiped.
        BlockDeviceError: the device cannot be opened.
    """
    name = os.fspath(device)
    table = read_volume_table(name)
    if not labels:
        raise DiskLayoutError("no partition labels to wipe were given")
    present = [p.name for p in table.partitions]
    unknown = [label for label in labels if table.find(label) is None]
    if unknown:
        raise UnknownLabelError(
            f"{name} has no partition labelled {', '.join(unknown)} (labels present: "
            f"{', '.join(present) if present else 'none'})"
        )
    block = is_block_device(name)
    sector = table.sector_size
    targets: list[tuple[str, int, Region]] = []
    for label in dict.fromkeys(labels):
        part = table.find(label)
        assert part is not None
        node = _partition_node(name, part.number, part.offset(sector), part.size(sector)) if block else None
        region = Region.whole(node) if node else Region(name, part.offset(sector), part.size(sector))
        targets.append((label, part.number, region))
    for label, _, region in targets:
        check_not_in_use(f"partition {label}", region)
    wiped: list[WipedPartition] = []
    for label, number, region in targets:
        found = wipe_region(region)
        wiped.append(
            WipedPartition(
                label=label,
                number=number,
                path=region.path,
                offset=region.offset,
                size=region.size,
                signatures=tuple(found),
            )
        )
    return wiped


@final
@dataclass(frozen=True)
class DiskVolume:
    """A volume found on a disk: the disk itself or one of its partitions, with what probing found there.

    ``region`` is where its bytes are: the partition's own device node when the kernel made one, else a
    byte range of the disk (image file or whole-disk device). ``signature`` is ``None`` for an empty volume.
    """

    disk: str
    region: Region
    signature: Signature | None
    partition_number: int | None = None
    partition_label: str | None = None
    partition_uuid: uuid.UUID | None = None
    partition_type: uuid.UUID | None = None

    @property
    def size(self) -> int:
        """Size in bytes."""
        return self.region.size


def discover_volumes(disk: str | os.PathLike[str]) -> list[DiskVolume]:
    """The disk and each of its GPT partitions, probed (blocking).

    A disk without a GPT is one volume (its signature, if any, says what it holds). A damaged GPT that
    still reads from one copy is used; ``CorruptTableError`` when both copies are bad, ``InvalidTableError``
    (before any partition is probed) when the table is invalid (``read_volume_table``).
    """
    name = os.fspath(disk)
    whole = Region.whole(name)
    try:
        table = read_volume_table(name)
    except NoPartitionTableError:
        return [DiskVolume(disk=name, region=whole, signature=probe_region(whole))]
    volumes = [DiskVolume(disk=name, region=whole, signature=probe_region(whole))]
    block = is_block_device(name)
    for part in table.partitions:
        node = (
            _partition_node(name, part.number, part.offset(table.sector_size), part.size(table.sector_size))
            if block
            else None
        )
        region = (
            Region.whole(node)
            if node
            else whole.sub(part.offset(table.sector_size), part.size(table.sector_size))
        )
        volumes.append(
            DiskVolume(
                disk=name,
                region=region,
                signature=probe_region(region),
                partition_number=part.number,
                partition_label=part.name,
                partition_uuid=part.unique_guid,
                partition_type=part.type_guid,
            )
        )
    return volumes
