"""The mkfs-pending mark of an unencrypted volume: META tag 0xf0, keyed by the partition's GPT UUID (a
whole-disk volume's: by the disk's identity).

An encrypted volume keeps this mark as a token in its own LUKS2 header (`_encryption.set_mkfs_pending`). An
unencrypted one has no header, so the mark lives in META, the node's small key/value store that volumed
already writes (tag 9). Why META and not the partition table: a META write is two checksummed 256 KiB
copies, written one after the other with an fsync each, so a power cut at any point leaves a valid copy
that holds either the old tags or the new ones (the mark is wholly there or wholly absent); a GPT flag
would rewrite the whole disk's table twice per mkfs (and ask the kernel to re-read it, which fails while a
partition of the system disk is in use), the partition name is the locator, and the free attribute bits
are reserved by UEFI or mean something to systemd. Talos keeps META tags it does not know (it allocates
its own upwards from 6, leaves 12-14 to users); systemd, cryptsetup and the kernel never read META.

A mark names the partition (its GPT unique GUID, read from the disk), the volume, the filesystem type and
the filesystem UUID volumed gave mkfs. A signature found at the next boot is taken for that interrupted mkfs
only when all four match: anything anyone else put there since carries another UUID and is left alone.

A whole-disk volume (``volumeType: disk``) has no partition to name: its mark names the disk by what
identifies the device itself, not the slot it sits in (`disk_identity`: WWID, NVMe namespace UUID or serial
with the model and size; an image file by its path). Disks swapped between boots do not carry a mark over:
another disk in the place of the one whose mkfs was cut, even one holding a copy of its bytes, has no mark of
its own, and its filesystem is taken as it is (never formatted).

Every function here blocks (META and GPT I/O): call them from worker threads.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, final

from volumed.storage.gpt import GPTError, read_partition_table
from volumed.storage.meta import MetaError, MetaTag

if TYPE_CHECKING:
    from collections.abc import Iterable

    from volumed.resources import DiskSpec
    from volumed.storage.meta import MetaPartition
    from volumed.storage.probe import Signature

MKFS_PENDING_TAG: Final = int(MetaTag.VOLUMED_MKFS_PENDING)
"""Far above the tags Talos allocates (6..18 so far, in order), outside its user tags 12..14."""
FORMAT_KEY: Final = "volumed-mkfs-pending"
FORMAT_VERSION: Final = 1

# Read-modify-write of the tag, as the volumes of a wave are formatted at once. In-process is enough: only the
# one `volumed run` writes this tag, and META's own flock keeps writers of other tags (MetaStore) apart.
_update_lock = threading.Lock()


class MkfsMarkError(Exception):
    """The mark cannot be written or removed (META unwritable, the tag holds a value volumed did not write,
    the volume's partition cannot be identified). Raised before mkfs starts, or after it ended (the mark
    then stays, and the next attempt makes the filesystem again); never for a mark that is only read."""


class ForeignValueError(ValueError):
    """The tag holds something other than volumed's mark list: it is not read as marks, nor overwritten."""


@final
@dataclass(frozen=True)
class MkfsMark:
    """One mkfs that started and has not finished: on which partition (or whole disk: ``partition_uuid``
    empty, ``disk`` its identity), for which volume, making what."""

    partition_uuid: str
    volume_id: str
    filesystem: str
    filesystem_uuid: str
    disk: str = ""

    @property
    def place(self) -> str:
        """What the mark is keyed by: the partition's GPT UUID, or ``disk:`` and the disk's identity."""
        return f"disk:{self.disk}" if self.disk else self.partition_uuid

    def made(self, signature: Signature) -> bool:
        """Whether ``signature`` is what this mkfs was writing: its filesystem type, with its UUID."""
        return (
            signature.type.value == self.filesystem
            and signature.uuid is not None
            and _uuid_or_none(signature.uuid) == self.filesystem_uuid
        )


@final
@dataclass(frozen=True)
class VolumePartition:
    """A located volume's partition: ``path``/``offset``/``size`` as the volume was located, the disk with
    its partition table (``path`` itself for a partition of an image file), its GPT number and label."""

    volume_id: str
    label: str
    path: str
    offset: int
    size: int
    disk: str
    number: int

    def partition_uuid(self) -> str:
        """The partition's GPT unique GUID, read from the disk now.

        Raises:
            MkfsMarkError: the table cannot be read, or holds no partition named ``label`` at this place.
        """
        try:
            table = read_partition_table(self.disk)
        except (GPTError, OSError) as error:
            raise MkfsMarkError(f"cannot read the partition table of {self.disk}: {error}") from error
        ss = table.sector_size
        for partition in table.partitions:
            here = (
                partition.offset(ss) == self.offset
                if self.disk == self.path
                else partition.number == self.number
            )
            if not here:
                continue
            if partition.name != self.label or (self.size and partition.size(ss) != self.size):
                break
            if partition.unique_guid.int == 0:
                raise MkfsMarkError(f"partition {partition.number} of {self.disk} has no unique GUID")
            return str(partition.unique_guid)
        where = f"at offset {self.offset}" if self.disk == self.path else f"number {self.number}"
        raise MkfsMarkError(
            f"{self.disk} has no partition {self.label!r} of {self.size} bytes {where} "
            f"(volume {self.volume_id})"
        )

    def mark(self, filesystem: str, filesystem_uuid: str) -> MkfsMark:
        """The mark of an mkfs of this partition (reads the GPT: `partition_uuid`)."""
        return MkfsMark(self.partition_uuid(), self.volume_id, filesystem, filesystem_uuid)

    def place(self) -> str:
        """What a mark of this partition is keyed by (reads the GPT: `partition_uuid`)."""
        return self.partition_uuid()


def disk_identity(disk: DiskSpec) -> str:
    """What names ``disk`` itself wherever it is plugged in: its WWID, NVMe namespace UUID or serial (with
    the model and size); a disk image by its path and size. A disk with none of these (a virtio disk
    without a serial) is named by where it hangs (its bus path, else its device node) and its size: a disk
    swapped into that place then shares the name, and only the filesystem UUID in the mark (random per mkfs)
    tells its content apart, as it does for a partition."""
    own = [
        f"{name}={value}"
        for name, value in (("wwid", disk.wwid), ("uuid", disk.uuid), ("serial", disk.serial))
        if value
    ]
    if own and not disk.image:
        where = [*own, f"model={disk.model}"]
    elif disk.image:
        where = [f"image={disk.dev_path}"]
    elif disk.bus_path:
        where = [f"bus={disk.bus_path}"]
    else:
        where = [f"path={disk.dev_path}"]
    return ",".join([*where, f"size={disk.size}"])


@final
@dataclass(frozen=True)
class VolumeDisk:
    """A whole-disk volume's disk: ``identity`` is `disk_identity` of it."""

    volume_id: str
    identity: str

    @classmethod
    def of(cls, volume_id: str, disk: DiskSpec) -> VolumeDisk:
        return cls(volume_id, disk_identity(disk))

    def mark(self, filesystem: str, filesystem_uuid: str) -> MkfsMark:
        """The mark of an mkfs of this disk."""
        return MkfsMark("", self.volume_id, filesystem, filesystem_uuid, disk=self.identity)

    def place(self) -> str:
        """What a mark of this disk is keyed by."""
        return f"disk:{self.identity}"


MarkedVolume = VolumePartition | VolumeDisk
"""Where an unencrypted volume's mkfs runs: a partition, or a whole disk."""


def _uuid_or_none(text: object) -> str | None:
    if not isinstance(text, str):
        return None
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        return None
    return None if parsed.int == 0 else str(parsed)


def _entry(partition: object, body: object, *, whole_disk: bool = False) -> MkfsMark | None:
    if not isinstance(body, dict):
        return None
    if whole_disk:
        disk, partition_uuid = (partition, "") if isinstance(partition, str) and partition else ("", None)
    else:
        disk, partition_uuid = "", _uuid_or_none(partition)
    filesystem_uuid = _uuid_or_none(body.get("uuid"))
    volume_id, filesystem = body.get("volume"), body.get("filesystem")
    if partition_uuid is None or filesystem_uuid is None:
        return None
    if not isinstance(volume_id, str) or not volume_id or not isinstance(filesystem, str) or not filesystem:
        return None
    return MkfsMark(partition_uuid, volume_id, filesystem, filesystem_uuid, disk=disk)


def decode_marks(value: bytes | None) -> list[MkfsMark]:
    """The marks in a tag value (None: no tag, no marks). Malformed entries are dropped.

    Raises:
        ForeignValueError: the value is not volumed's mark list (another format, another version).
    """
    if value is None:
        return []
    try:
        document = json.loads(value)
    except (UnicodeDecodeError, ValueError):
        raise ForeignValueError("not JSON") from None
    if not isinstance(document, dict) or document.get(FORMAT_KEY) != FORMAT_VERSION:
        raise ForeignValueError(f"not a {FORMAT_KEY} v{FORMAT_VERSION} document")
    found: list[MkfsMark] = []
    for section, whole_disk in (("partitions", False), ("disks", True)):
        entries = document.get(section)
        if not isinstance(entries, dict):
            continue
        for key, value in entries.items():
            bodies = value if isinstance(value, list) else [value]  # a list: volumes sharing the place
            found += [m for b in bodies if (m := _entry(key, b, whole_disk=whole_disk)) is not None]
    return found


def encode_marks(marks: Iterable[MkfsMark]) -> bytes:
    """The tag value for ``marks`` (compact JSON; one entry per partition or disk and volume, the last wins).

    Whole-disk marks are in a section of their own (``disks``), so a volumed that knows only partitions
    reads none of them: it formats no whole disk on a mark. A place with one mark has it as an object, as
    before; a place several volumes share (two disks of one identity, a cloned partition table) has a list,
    by volume, which an older volumed drops (it then formats nothing there).
    """
    places: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for m in marks:
        body = {"volume": m.volume_id, "filesystem": m.filesystem, "uuid": m.filesystem_uuid}
        place = ("disks", m.disk) if m.disk else ("partitions", m.partition_uuid)
        places.setdefault(place, {})[m.volume_id] = body
    sections: dict[str, dict[str, Any]] = {"partitions": {}, "disks": {}}
    for (section, key), by_volume in places.items():
        bodies = [by_volume[volume] for volume in sorted(by_volume)]
        sections[section][key] = bodies[0] if len(bodies) == 1 else bodies
    document: dict[str, Any] = {FORMAT_KEY: FORMAT_VERSION, "partitions": sections["partitions"]}
    if sections["disks"]:
        document["disks"] = sections["disks"]
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def read_marks(meta: MetaPartition) -> list[MkfsMark]:
    """The marks in META (MetaError: META cannot be read; ForeignValueError: see `decode_marks`)."""
    return decode_marks(meta.get(MKFS_PENDING_TAG))


def interrupted_mkfs(meta: MetaPartition, volume: MarkedVolume, signature: Signature) -> bool:
    """Whether ``signature`` on the volume was left by volumed's own mkfs of it that never finished.

    Reads the GPT only when META holds a mark for this volume. Raises MetaError, ForeignValueError or
    MkfsMarkError when it cannot tell: the caller then takes the signature as it is (formats nothing).
    """
    marks = [m for m in read_marks(meta) if m.volume_id == volume.volume_id]
    if not marks:
        return False
    place = volume.place()
    return any(m.place == place and m.made(signature) for m in marks)


def _update(meta: MetaPartition, volume: MarkedVolume, mark: MkfsMark | None) -> None:
    with _update_lock:
        try:
            old = meta.get(MKFS_PENDING_TAG)
            marks = decode_marks(old)
        except ForeignValueError as error:
            offset = f" --offset {meta.offset}" if meta.offset else ""
            raise MkfsMarkError(
                f"META tag {MKFS_PENDING_TAG:#04x} on {meta.path} (offset {meta.offset}) holds a value "
                f"volumed did not write ({error}); it is left as it is. If nothing else uses that tag, "
                f"delete it: volumed meta delete {meta.path} {MKFS_PENDING_TAG:#04x}{offset}"
            ) from None
        except MetaError as error:
            raise MkfsMarkError(f"cannot read META: {error}") from error
        # one mark per volume: an older one of the volume (elsewhere) is stale. Another volume's mark is never
        # removed, even at the same place: two disks can share an identity (serial, model and size), and its
        # mkfs, cut, would be forgotten.
        kept = [m for m in marks if m.volume_id != volume.volume_id]
        if mark is not None:
            kept.append(mark)
        try:
            if kept:
                meta.set(MKFS_PENDING_TAG, encode_marks(kept))
            elif old is not None:
                meta.delete(MKFS_PENDING_TAG)
        except MetaError as error:
            raise MkfsMarkError(f"cannot write META: {error}") from error


def mark_mkfs(meta: MetaPartition, volume: MarkedVolume, filesystem: str, filesystem_uuid: str) -> MkfsMark:
    """Record, durably (META is fsync'ed), that mkfs of ``volume`` is about to start. Call before mkfs.

    Raises:
        MkfsMarkError: nothing was recorded: do not start mkfs.
    """
    mark = volume.mark(filesystem, filesystem_uuid)
    _update(meta, volume, mark)
    return mark


def unmark_mkfs(meta: MetaPartition, volume: MarkedVolume) -> None:
    """Remove the volume's mark. Call only once its filesystem is complete and flushed to the device.

    Raises:
        MkfsMarkError: the mark is still there (the next attempt makes the filesystem again).
    """
    _update(meta, volume, None)
