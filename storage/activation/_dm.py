"""The ``dm`` backend: dm-crypt from the volume key we hold (no KDF), ``dmsetup`` reading the table on stdin.

Like cryptsetup, the key goes to dm-crypt through the kernel keyring as a ``logon`` key (unreadable from user
space; the table only names it, so even ``dmsetup table --showkeys`` cannot show it), revoked once loaded.
Where the keyring is unusable the table carries the key in hex instead; either way the table only travels
through a pipe to dmsetup, never a command line, the environment or a log. Image files get a loop device
first, with autoclear, so it goes away together with the mapping.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, final

from volumed.storage import loop

from ._capacity import refresh_loop_capacity
from ._ciphers import DM_KEY_SIZES, cipher_problem
from ._errors import ActivationBusyError, ActivationConflictError, ActivationError
from ._fuse import segment_size
from ._keyring import add_logon_key, remove_key
from ._model import CRYPT_FLAGS, ActivationStatus, BackendName, DataSegment, check_flags, check_name

if TYPE_CHECKING:
    from collections.abc import Iterable

MAPPER_DIR: Final = Path("/dev/mapper")
SYS_BLOCK: Final = Path("/sys/block")
SYS_DEV_BLOCK: Final = Path("/sys/dev/block")


@final
@dataclass(frozen=True)
class CryptTable:
    """One dm-crypt table line for a LUKS2 segment, as cryptsetup would load it.

    ``iv_offset`` is the segment's ``iv_tweak``; IVs count 512-byte units (no ``iv_large_sectors``), like
    LUKS2. ``flags`` are dm-crypt optional parameters (``allow_discards``, ``no_read_workqueue``...). The key
    is in the line: treat :meth:`line` as a secret. ``repr`` leaves it out.
    """

    sectors: int
    cipher: str
    source: str
    source_offset_sectors: int
    iv_offset: int
    sector_size: int
    key: bytes = field(repr=False)
    flags: tuple[str, ...] = ()

    def options(self) -> list[str]:
        """The optional parameters: the flags, then the sector size unless it is 512 bytes."""
        return [*self.flags, *([f"sector_size:{self.sector_size}"] if self.sector_size != 512 else [])]

    def line(self, *, key_spec: str | None = None) -> str:
        """The table line; the key as hex unless ``key_spec`` (e.g. ``:64:logon:volumed:NAME``) is given."""
        key = key_spec if key_spec is not None else self.key.hex()
        text = (
            f"0 {self.sectors} crypt {self.cipher} {key} {self.iv_offset} {self.source} "
            f"{self.source_offset_sectors}"
        )
        options = self.options()
        return f"{text} {len(options)} {' '.join(options)}" if options else text

    def redacted(self) -> str:
        """The line with the key replaced by ``-``, as ``dmsetup table`` shows it: safe to log."""
        return self.line(key_spec="-")


def crypt_table(
    segment: DataSegment, *, source: str, size: int, volume_key: bytes, flags: Iterable[str] = ()
) -> CryptTable:
    """The dm-crypt table of ``segment`` on block device ``source`` for ``size`` decrypted bytes.

    ``flags`` (any of :data:`CRYPT_FLAGS`, or ``iv_large_sectors`` kept from an active table) are written
    once each, in cryptsetup's order.
    """
    wanted = set(flags)
    check_flags(wanted - {"iv_large_sectors"})
    problem = cipher_problem("dm", segment.cipher)
    if problem is not None:
        raise ActivationError(problem)
    if len(volume_key) not in DM_KEY_SIZES[segment.cipher]:
        bits = "- or ".join(f"{size * 8}" for size in DM_KEY_SIZES[segment.cipher])
        raise ActivationError(f"{segment.cipher} needs a {bits}-bit key, got {len(volume_key) * 8} bits")
    return CryptTable(
        sectors=size // 512,
        cipher=segment.cipher,
        source=source,
        source_offset_sectors=segment.offset // 512,
        iv_offset=segment.iv_tweak,
        sector_size=segment.sector_size,
        key=volume_key,
        flags=tuple(flag for flag in (*CRYPT_FLAGS, "iv_large_sectors") if flag in wanted),
    )


def dm_uuid(name: str, luks_uuid: str | None) -> str:
    """cryptsetup's dm UUID for a LUKS2 mapping (``CRYPT-LUKS2-<uuid without dashes>-<name>``)."""
    if luks_uuid:
        return f"CRYPT-LUKS2-{luks_uuid.replace('-', '')}-{name}"
    return f"CRYPT-VOLUMED-{name}"


@final
class DmActivator:
    """Activation through device-mapper's dm-crypt (needs a kernel with dm-crypt and ``dmsetup``).

    Args:
        dmsetup: the dmsetup binary (default: from PATH).
        use_keyring: hand the key over as a kernel ``logon`` key (falls back to a hex key in the table).
    """

    def __init__(self, *, dmsetup: str | None = None, use_keyring: bool = True) -> None:
        self._dmsetup = dmsetup or shutil.which("dmsetup") or "/usr/sbin/dmsetup"
        self._use_keyring = use_keyring

    def __repr__(self) -> str:
        return "DmActivator()"

    @property
    def backend(self) -> BackendName:
        return "dm"

    def activate(
        self, name: str, segment: DataSegment, volume_key: bytes, *, flags: Iterable[str] = ()
    ) -> str:
        check_name(name)
        wanted = check_flags(flags)
        sys_dir = self._sys_dir(name)
        if sys_dir is not None:  # its flags stay as they are until it is activated again
            self._check_same(name, sys_dir, segment)
            return str(MAPPER_DIR / name)
        size = segment_size(segment)
        if stat.S_ISBLK(_mode(segment.device)):
            self._create(name, segment, segment.device, size, volume_key, wanted)
        else:
            with loop.attached(segment.device, autoclear=True) as backing:
                self._create(name, segment, backing.path, size, volume_key, wanted)
        return str(MAPPER_DIR / name)

    def resize(self, name: str, segment: DataSegment, volume_key: bytes) -> int:
        """Make active mapping ``name`` as large as ``segment`` now is; return its size in bytes.

        Like ``cryptsetup resize``: a table of the new length (same source, offset, key and optional flags)
        is loaded next to the live one and swapped in by a resume; the key travels as a logon key again (the
        one loaded at activation was revoked, so the new table needs it). An image file's loop device is
        told its file grew first. Growing only: a smaller segment raises, nothing changed.
        """
        check_name(name)
        sys_dir = self._sys_dir(name)
        if sys_dir is None:
            raise ActivationError(f"cannot resize {name}: it is not active")
        active = self._check_same(name, sys_dir, segment, compare_size=False)
        size = segment_size(segment)
        if not stat.S_ISBLK(_mode(segment.device)):
            refresh_loop_capacity(_node_of(active.source))
        if size < active.size:
            raise ActivationError(
                f"cannot resize {name}: its segment is {size} bytes, smaller than the {active.size} mapped"
            )
        if size == active.size:
            return size
        flags = [option for option in active.options if not option.startswith("sector_size:")]
        table = crypt_table(segment, source=active.source, size=size, volume_key=volume_key, flags=flags)
        self._load(name, ("reload", name), table, volume_key)
        result = self._run("resume", name, "--noudevsync")
        if result.returncode != 0:
            self._run("clear", name)  # drop the loaded table: the live one stays as it was
            raise ActivationError(f"dmsetup resume {name} failed: {result.stderr.strip()}")
        return size

    def deactivate(self, name: str) -> None:
        check_name(name)
        if self._sys_dir(name) is None:
            return
        result = self._run("remove", name)
        if result.returncode != 0:
            if "busy" in result.stderr.lower():
                raise ActivationBusyError(
                    f"{name}: /dev/mapper/{name} is in use (mounted?); unmount it first"
                )
            raise ActivationError(f"dmsetup remove {name} failed: {result.stderr.strip()}")
        # Without udev nothing else deletes /dev/mapper/NAME, and a stale node would point at the dm minor
        # the next mapping gets: mknodes of a name that no longer exists removes its node.
        self._run("mknodes", name)

    def is_active(self, name: str) -> bool:
        return self.status(name).active

    def status(self, name: str) -> ActivationStatus:
        check_name(name)
        sys_dir = self._sys_dir(name)
        if sys_dir is None:
            return ActivationStatus(name=name, backend="dm", active=False)
        slaves = sorted(os.listdir(sys_dir / "slaves")) if (sys_dir / "slaves").is_dir() else []
        size = int((sys_dir / "size").read_text().strip()) * 512
        return ActivationStatus(
            name=name,
            backend="dm",
            active=True,
            device=str(MAPPER_DIR / name),
            source=f"/dev/{slaves[0]}" if slaves else None,
            size=size,
        )

    # internals

    def _create(
        self, name: str, segment: DataSegment, source: str, size: int, key: bytes, flags: tuple[str, ...]
    ) -> None:
        table = crypt_table(segment, source=source, size=size, volume_key=key, flags=flags)
        self._load(
            name, ("create", name, "--uuid", dm_uuid(name, segment.luks_uuid), "--noudevsync"), table, key
        )
        self._run("mknodes", name)

    def _load(self, name: str, command: tuple[str, ...], table: CryptTable, key: bytes) -> None:
        """Run dmsetup ``command`` (create or reload) with ``table`` on stdin, the key as a logon key."""
        description = f"volumed:{name}"
        serial = add_logon_key(description, key) if self._use_keyring else None
        try:
            result = None
            if serial is not None:
                key_spec = f":{len(key)}:logon:{description}"
                result = self._run(*command, stdin=table.line(key_spec=key_spec) + "\n")
            if result is None or result.returncode != 0:  # no keyring, or dm-crypt without keyring support
                result = self._run(*command, stdin=table.line() + "\n")
        finally:
            if serial is not None:
                remove_key(serial)
        if result.returncode != 0:
            raise ActivationError(f"dmsetup {command[0]} {name} failed: {result.stderr.strip()}")

    def _check_same(
        self, name: str, sys_dir: Path, segment: DataSegment, *, compare_size: bool = True
    ) -> _ActiveTable:
        """Raise ActivationConflictError unless active ``name`` maps exactly ``segment``; return its table.

        Compares what identifies the mapping: the bytes it maps (source device and offset; a partition is
        its disk from the partition's start, an image is the loop device attached to it), the size (unless
        ``compare_size`` is False: a resize) and the dm UUID (which names the LUKS2 header's UUID).
        """
        result = self._run("table", name)
        active = _parse_table(result.stdout) if result.returncode == 0 else None
        if active is None:
            raise ActivationConflictError(f"{name} exists but is not a dm-crypt mapping")
        source, offset, size = active.source, active.offset, active.size
        differences: list[str] = []
        if not _same_source(source, segment.device, offset, segment.offset):
            differences.append(
                f"it maps {_describe_source(source)} at offset {offset}, not {segment.device} at offset "
                f"{segment.offset}"
            )
        wanted_size = segment_size(segment) if compare_size else size
        if size != wanted_size:
            differences.append(f"its size is {size}, not {wanted_size}")
        active_uuid = _read_text(sys_dir / "dm" / "uuid")
        wanted_uuid = dm_uuid(name, segment.luks_uuid)
        if active_uuid != wanted_uuid:
            differences.append(f"its dm UUID is {active_uuid!r}, not {wanted_uuid!r}")
        if differences:
            raise ActivationConflictError(
                f"{name} is already active for another volume: {'; '.join(differences)}"
            )
        return active

    def _sys_dir(self, name: str) -> Path | None:
        try:
            entries = os.listdir(SYS_BLOCK)
        except FileNotFoundError:
            return None
        for entry in entries:
            if entry.startswith("dm-"):
                try:
                    if (SYS_BLOCK / entry / "dm" / "name").read_text().strip() == name:
                        return SYS_BLOCK / entry
                except FileNotFoundError:
                    continue
        return None

    def _run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        if stdin is None:
            return subprocess.run(
                [self._dmsetup, *args],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
        return subprocess.run(
            [self._dmsetup, *args], input=stdin, capture_output=True, text=True, check=False, timeout=60
        )


@dataclass(frozen=True)
class _ActiveTable:
    """The parts of a live dm-crypt table (``dmsetup table``, key shown as ``-``) that a resize keeps."""

    size: int
    source: str
    offset: int
    options: tuple[str, ...]


def _parse_table(text: str) -> _ActiveTable | None:
    """``0 SECTORS crypt CIPHER KEY IV SOURCE OFFSET [N OPTION...]``, or None if it is not one crypt line."""
    fields = text.split()
    if len(fields) < 8 or fields[0] != "0" or fields[2] != "crypt" or "\n" in text.strip():
        return None
    try:
        size, offset = int(fields[1]) * 512, int(fields[7]) * 512
        count = int(fields[8]) if len(fields) > 8 else 0
    except ValueError:
        return None
    if len(fields) != (9 + count if len(fields) > 8 else 8):
        return None
    return _ActiveTable(size=size, source=fields[6], offset=offset, options=tuple(fields[9 : 9 + count]))


def _node_of(source: str) -> str:
    """The /dev node of a table's source (``major:minor``, or already a path)."""
    if not re.fullmatch(r"\d+:\d+", source):
        return source
    return f"/dev/{(SYS_DEV_BLOCK / source).resolve().name}"


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _disk_position(number: str) -> tuple[str, int]:
    """A block device ``major:minor`` as (whole disk ``major:minor``, start in bytes).

    A partition is the same bytes as its disk from the partition's start (sysfs ``partition`` and ``start``,
    and the parent's ``dev``).
    """
    node = SYS_DEV_BLOCK / number
    if (node / "partition").exists():
        start = _read_text(node / "start")
        parent = _read_text(node.resolve().parent / "dev")
        if start.isdigit() and parent:
            return parent, int(start) * 512
    return number, 0


def _same_source(source: str, device: str, source_offset: int, offset: int) -> bool:
    """Whether the table's source (``major:minor``) at ``source_offset`` is ``device`` at ``offset``.

    For a block device, the same bytes count: a partition and its disk at the partition's start (a volume
    provisioned a moment ago is first addressed on the disk, then on the partition node once the kernel has
    it). For an image file, the source must be a loop device attached to it (whole, as we attach them).
    """
    try:
        info = os.stat(device)
    except OSError:
        return False
    if stat.S_ISBLK(info.st_mode):
        disk, start = _disk_position(source)
        wanted_disk, wanted_start = _disk_position(f"{os.major(info.st_rdev)}:{os.minor(info.st_rdev)}")
        return (disk, start + source_offset) == (wanted_disk, wanted_start + offset)
    backing = _read_text(SYS_DEV_BLOCK / source / "loop" / "backing_file")
    if not backing or _read_text(SYS_DEV_BLOCK / source / "loop" / "offset") not in ("", "0"):
        return False
    try:
        return os.path.samefile(backing, device) and source_offset == offset
    except OSError:
        return False


def _describe_source(source: str) -> str:
    """``major:minor`` with the loop device's backing file when it has one, for error messages."""
    backing = _read_text(SYS_DEV_BLOCK / source / "loop" / "backing_file")
    return f"{source} (loop device of {backing})" if backing else source


def _mode(path: str) -> int:
    try:
        return os.stat(path).st_mode
    except OSError as exc:
        raise ActivationError(f"cannot open {path}: {exc.strerror}") from exc
