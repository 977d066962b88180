"""``Luks2Volume``: the everyday API — open, unlock, add/kill/change keys, tokens, label — over one header.

Synchronous and blocking (KDF runs, disk I/O): async callers run each call in a worker thread. One
instance is not thread-safe; open files of one header (in one process or several) are kept apart by the
header lock (`Region.locked`: a byte-range lock over the volume's own bytes) and the seqid check.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, final

from . import _header_io as hio
from . import faults
from ._c_luks2 import LABEL_MAX, SUBSYSTEM_MAX
from ._device import Region
from ._errors import (
    AmbiguousSignaturesError,
    ConcurrentUpdateError,
    DeviceError,
    InvalidMetadataError,
    KeyslotNotActiveError,
    KeyslotUnusableError,
    Luks2Error,
    NoKeyError,
    NoSpaceError,
    ReadOnlyError,
    UnsupportedCipherError,
)
from ._kdf import KdfSettings
from ._keyslots import (
    allocate_area,
    area_length,
    build_keyslot,
    digest_of_slot,
    free_slot_id,
    key_matches,
    open_keyslot,
    unlock_order,
    unusable_reason,
    unusable_slots,
)
from ._metadata import Keyslot, Metadata, Segment, Token
from ._options import FormatOptions, check_label
from ._tokens import check_token_id, export_token, parse_token
from ._validate import MAX_KEYSLOTS, MAX_TOKENS, unknown_requirements
from ._volume_key import VolumeKey

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from .payload import PayloadStream

log = logging.getLogger(__name__)

Secret = bytes | str
PathLike = str | os.PathLike[str]


def _secret(value: Secret) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _open_file(path: PathLike, read_only: bool) -> tuple[BinaryIO, bool]:
    """Open for update when allowed, else read-only; the volume owns and closes the file."""
    try:
        if not read_only:
            try:
                return open(path, "r+b"), True
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                    raise
        return open(path, "rb"), False
    except FileNotFoundError:
        raise DeviceError(f"{os.fspath(path)}: no such file or device") from None
    except OSError as exc:
        raise DeviceError(f"{os.fspath(path)}: cannot open ({exc.strerror})") from None


@final
class Luks2Volume:
    """One LUKS2 volume: its header (maybe detached) and its data area, both possibly inside larger files.

    Create it with ``open``/``from_files`` or ``format``; use it as a context manager to close the files.
    """

    def __init__(
        self, header: Region, data: Region, *, files: tuple[BinaryIO, ...] = (), repair: bool = False
    ) -> None:
        self._header = header
        self._data = data
        self._files = files
        with header.locked(exclusive=False):
            self._state = hio.load(header)  # never writes: a bad copy is repaired by a change or `repair`
        if repair and self._state.needs_repair:
            self.repair()

    # ---- construction -------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: PathLike,
        *,
        offset: int = 0,
        size: int | None = None,
        header: PathLike | None = None,
        read_only: bool = False,
        repair: bool = False,
    ) -> Luks2Volume:
        """Open the volume at ``path`` (``offset``/``size`` select a partition inside an image).

        Args:
            path: image file or block device holding the data (and the header unless ``header`` is given).
            offset: where the volume starts inside ``path``.
            size: the volume's length; None: to the end of ``path``.
            header: a detached header file (``cryptsetup --header``).
            read_only: never write (opened ``rb``; every change is refused).
            repair: rewrite a bad or stale header copy now (see `repair`). Otherwise opening never writes:
                the first change rewrites both copies, after the same check.
        """
        data_file, writable = _open_file(path, read_only)
        files = [data_file]
        try:
            data = Region(data_file, offset=offset, size=size, writable=writable, name=os.fspath(path))
            if header is None:
                header_region = data
            else:
                header_file, header_writable = _open_file(header, read_only)
                files.append(header_file)
                header_region = Region(header_file, writable=header_writable, name=os.fspath(header))
            return cls(header_region, data, files=tuple(files), repair=repair)
        except BaseException:
            for f in files:
                f.close()
            raise

    @classmethod
    def from_files(
        cls,
        file: BinaryIO,
        *,
        offset: int = 0,
        size: int | None = None,
        header_file: BinaryIO | None = None,
        read_only: bool = False,
        repair: bool = False,
    ) -> Luks2Volume:
        """Like ``open`` over already open binary files (the caller keeps ownership and closes them)."""
        data = Region(file, offset=offset, size=size, writable=not read_only)
        header = data if header_file is None else Region(header_file, writable=not read_only)
        return cls(header, data, repair=repair)

    @classmethod
    def format(
        cls,
        path: PathLike,
        passphrase: Secret,
        *,
        offset: int = 0,
        size: int | None = None,
        header: PathLike | None = None,
        volume_key: bytes | None = None,
        tokens: Mapping[int, dict[str, Any]] | None = None,
        **options: Any,
    ) -> Luks2Volume:
        """Create a new LUKS2 volume at ``path`` with one key slot; ``options`` fill ``FormatOptions``.

        Destroys whatever header was there. ``header`` writes a detached header file (created if missing).
        ``tokens`` go into the final header itself (the same commit as the key slot).
        """
        from ._format import format_regions

        opts = FormatOptions(**options)
        data_file, writable = _open_file(path, False)
        files = [data_file]
        made_header: Path | None = None  # a header file this call created, removed again if it fails
        try:
            if not writable:
                raise ReadOnlyError(f"{os.fspath(path)}: not writable")
            data = Region(data_file, offset=offset, size=size, name=os.fspath(path))
            header_region = data
            if header is not None:
                if not Path(header).exists():
                    Path(header).touch()
                    made_header = Path(header)
                header_file, _ = _open_file(header, False)
                files.append(header_file)
                header_region = Region(header_file, name=os.fspath(header))
            with header_region.locked(exclusive=True):
                format_regions(
                    header_region,
                    data,
                    _secret(passphrase),
                    opts,
                    detached=header is not None,
                    volume_key=volume_key,
                    tokens=tokens,
                )
            return cls(header_region, data, files=tuple(files))
        except BaseException:
            for f in files:
                f.close()
            if made_header is not None:
                made_header.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files = ()

    def __enter__(self) -> Luks2Volume:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Luks2Volume(header={self._header!r}, uuid={self.uuid!r}, seqid={self.seqid})"

    # ---- read-only views ----------------------------------------------------------------------------------

    @property
    def metadata(self) -> Metadata:
        return self._state.metadata

    @property
    def json_text(self) -> str:
        """The JSON metadata exactly as stored on disk."""
        return self._state.json_text.decode("utf-8")

    @property
    def uuid(self) -> str:
        return self._state.binary.uuid

    @property
    def label(self) -> str:
        return self._state.binary.label

    @property
    def subsystem(self) -> str:
        return self._state.binary.subsystem

    @property
    def seqid(self) -> int:
        return self._state.seqid

    @property
    def metadata_size(self) -> int:
        return self._state.hdr_size

    @property
    def keyslots(self) -> Mapping[int, Keyslot]:
        return {i: s for i, s in self.metadata.keyslots.items() if isinstance(s, Keyslot)}

    @property
    def tokens(self) -> Mapping[int, Token]:
        return self.metadata.tokens

    @property
    def segment(self) -> Segment:
        """The (first) crypt data segment."""
        for seg in self.metadata.segments.values():
            if seg.type == "crypt" and not seg.is_backup:
                return seg
        raise Luks2Error(f"{self._header.name}: no crypt segment")

    @property
    def data_region(self) -> Region:
        return self._data

    @property
    def data_size(self) -> int:
        """Bytes of payload: the segment size, or for ``dynamic`` the rest of the data area."""
        seg = self.segment
        if seg.size is not None:
            return seg.size
        return max(0, self._data.size - seg.offset)

    @property
    def header_problems(self) -> tuple[str, ...]:
        """What is wrong with the header copy that lost (invalid, stale); empty when both are good."""
        return self._state.problems

    @property
    def read_only_reason(self) -> str | None:
        """Why writes are refused, or None when they are allowed."""
        unknown = unknown_requirements(self.metadata)
        if unknown:
            return f"unsupported mandatory requirements: {', '.join(unknown)}"
        if not self._header.writable:
            return "opened read-only"
        return None

    def payload(self, volume_key: VolumeKey) -> PayloadStream:
        """A seekable stream over the decrypted data segment (writable when the volume is).

        The volume key is checked against the digest first, so a wrong key never writes garbage.

        Raises:
            UnsupportedCipherError: the segment's cipher is not one this library implements.
        """
        from .payload import PayloadStream
        from .xts import CIPHERS

        seg = self.segment
        if seg.encryption not in CIPHERS:
            raise UnsupportedCipherError(
                f"{self._header.name}: unsupported payload cipher {seg.encryption!r}"
                f" (supported by volumed: {', '.join(CIPHERS)})"
            )
        key = self.check_volume_key(volume_key)
        return PayloadStream(
            self._data.file,
            offset=self._data.offset + seg.offset,
            size=self.data_size // seg.sector_size * seg.sector_size,
            sector_size=seg.sector_size,
            iv_tweak=seg.iv_tweak,
            volume_key=key.material,
            cipher=seg.encryption,
        )

    # ---- unlocking ----------------------------------------------------------------------------------------

    def unlock(self, passphrase: Secret, *, keyslot: int | None = None) -> VolumeKey:
        """The volume key, from the given slot or from the first slot the passphrase opens.

        Raises:
            NoKeyError: no slot opened (wrong passphrase, empty or disabled slot) — one error for all.
            KeyslotUnusableError: the slot named, or every slot that could be tried, is unusable here
                (`unusable_reason`: a hash or cipher not implemented, ...); each named with its reason.
        """
        secret = _secret(passphrase)
        meta = self.metadata
        if keyslot is not None:
            named = self.keyslots.get(keyslot)
            if named is None or (named.priority is not None and named.priority not in (0, 1, 2)):
                raise KeyslotNotActiveError(f"{self._header.name}: key slot {keyslot} is not active")
            reason = unusable_reason(named, digest_of_slot(meta, keyslot)[1])
            if reason is not None:  # before any KDF run, the digest's hash too
                raise KeyslotUnusableError(f"{self._header.name}: keyslot {keyslot}: {reason}")
            order = [keyslot]
        else:
            order = unlock_order(meta)
            if not order and (unusable := unusable_slots(meta)):
                reasons = "; ".join(f"keyslot {i}: {why}" for i, why in sorted(unusable.items()))
                raise KeyslotUnusableError(f"{self._header.name}: {reasons}")
        for slot_id in order:
            slot = self.keyslots[slot_id]
            _, digest = digest_of_slot(meta, slot_id)
            candidate = open_keyslot(self._header, slot, secret)
            if key_matches(digest, candidate):
                return VolumeKey(candidate, slot_id)
        raise NoKeyError(f"{self._header.name}: no key available with this passphrase")

    def check_volume_key(self, volume_key: VolumeKey | bytes) -> VolumeKey:
        """Return ``volume_key`` as a VolumeKey if it is this volume's key; NoKeyError otherwise."""
        material = volume_key.material if isinstance(volume_key, VolumeKey) else bytes(volume_key)
        for seg_id, seg in self.metadata.segments.items():
            if seg.type != "crypt" or seg.is_backup:
                continue
            for digest in self.metadata.digests.values():
                if seg_id in digest.segments and key_matches(digest, material):
                    return VolumeKey(
                        material, volume_key.keyslot if isinstance(volume_key, VolumeKey) else None
                    )
        raise NoKeyError(f"{self._header.name}: the volume key does not match")

    # ---- changing ---------------------------------------------------------------------------------------

    def _check_writable(self) -> None:
        """Refuse a change of a read-only volume, or one whose bad header copy must not be rewritten.

        Every change writes both header copies, so it repairs the bad one: only where `repair` may.
        """
        reason = self.read_only_reason
        if reason is not None:
            raise ReadOnlyError(f"{self._header.name}: {reason}")
        if self._state.needs_repair:
            refusal = hio.repair_refusal(self._header)
            if refusal is not None:
                raise AmbiguousSignaturesError(
                    f"{self._header.name}: {refusal}, cannot repair the LUKS2 header; nothing was written"
                )

    def repair(self) -> bool:
        """Rewrite the bad or stale header copy from the good one (cryptsetup repair); False: nothing to do.

        Only where cryptsetup repairs: no signature but LUKS on the device (libblkid's and ours) — and, beyond
        cryptsetup, the primary header area starts with the LUKS magic or is all zero. Otherwise the
        LUKS2 copy is the leftover and the rest is somebody's data.

        Raises:
            AmbiguousSignaturesError: another signature is present (nothing written).
            ReadOnlyError, ConcurrentUpdateError, BusyError.
        """
        if not self._state.needs_repair:
            return False
        self._check_writable()
        with self._header.locked(exclusive=True):
            state = hio.load(self._header)
            if state.seqid != self._state.seqid:
                raise ConcurrentUpdateError(
                    f"{self._header.name}: the header changed on disk since it was read; reopen the volume"
                )
            for problem in state.problems:
                log.warning("LUKS2 %s: %s; repairing it from the other copy", self._header.name, problem)
            self._state = hio.repair(self._header, state)
        return True

    def _mutate(
        self,
        change: Callable[[Metadata], Metadata],
        *,
        before_commit: Callable[[], None] | None = None,
        after_commit: Callable[[], None] | None = None,
        label: str | None = None,
        subsystem: str | None = None,
    ) -> None:
        self._check_writable()
        with self._header.locked(exclusive=True):
            new_meta = change(self.metadata)
            if hio.current_seqid(self._header) != self._state.seqid:
                raise ConcurrentUpdateError(
                    f"{self._header.name}: the header changed on disk since it was read; reopen the volume"
                )
            if before_commit is not None:
                before_commit()
            self._state = hio.commit(self._header, self._state, new_meta, label=label, subsystem=subsystem)
            if after_commit is not None:
                after_commit()

    def add_key(
        self,
        new_passphrase: Secret,
        *,
        passphrase: Secret | None = None,
        volume_key: VolumeKey | bytes | None = None,
        keyslot: int | None = None,
        kdf: KdfSettings | None = None,
        priority: int | None = None,
    ) -> int:
        """Add a key slot for ``new_passphrase``; authorise with an existing ``passphrase`` or ``volume_key``.

        With ``volume_key`` no existing slot is opened (no extra KDF run). Returns the new slot number.
        """
        self._check_writable()
        if (passphrase is None) == (volume_key is None):
            raise InvalidMetadataError("add_key needs exactly one of passphrase or volume_key")
        self._check_new_slot(keyslot)
        key = self.unlock(passphrase) if passphrase is not None else self.check_volume_key(volume_key or b"")
        return self._store_key(key, _secret(new_passphrase), keyslot=keyslot, kdf=kdf, priority=priority)

    def _check_new_slot(self, keyslot: int | None) -> None:
        if keyslot is None:
            free_slot_id(self.metadata)
            return
        if not 0 <= keyslot < MAX_KEYSLOTS:
            raise InvalidMetadataError(f"key slot {keyslot} is out of range 0..{MAX_KEYSLOTS - 1}")
        if keyslot in self.metadata.keyslots:
            raise InvalidMetadataError(f"key slot {keyslot} is already in use")

    def _store_key(
        self,
        key: VolumeKey,
        secret: bytes,
        *,
        keyslot: int | None,
        kdf: KdfSettings | None,
        priority: int | None,
        replace_slot: int | None = None,
        tokens: Mapping[int, Mapping[str, Any] | None] | None = None,
    ) -> int:
        meta = self.metadata
        slot_id = (
            replace_slot
            if replace_slot is not None
            else (keyslot if keyslot is not None else free_slot_id(meta))
        )
        try:
            area_offset = allocate_area(meta, self.metadata_size, area_length(len(key.material)))
        except NoSpaceError as error:
            if replace_slot is None:
                raise
            raise NoSpaceError(
                f"{self._header.name}: key slot {replace_slot} keeps its old key: {error} for the new key"
                " (it is written before the old one is removed)"
            ) from None
        new = build_keyslot(
            key.material,
            secret,
            settings=kdf or KdfSettings(),
            area_offset=area_offset,
            cipher=self.segment.encryption,
            priority=priority,
        )
        digest_id = self._digest_for(key)
        old_area: tuple[int, int] | None = None
        if replace_slot is not None:
            old = meta.keyslots[replace_slot]
            old_area = (old.area_offset, old.area_size)

        def change(current: Metadata) -> Metadata:
            if current is not meta:
                raise ConcurrentUpdateError(f"{self._header.name}: metadata changed during the update")
            keyslots = dict(current.keyslots)
            keyslots[slot_id] = new.keyslot
            digests = {
                i: d if i == digest_id else replace(d, keyslots=tuple(k for k in d.keyslots if k != slot_id))
                for i, d in current.digests.items()
            }
            d = digests[digest_id]
            if slot_id not in d.keyslots:
                digests[digest_id] = replace(d, keyslots=(*d.keyslots, slot_id))
            changed = replace(current, keyslots=keyslots, digests=digests)
            if not tokens:
                return changed
            new_tokens = dict(changed.tokens)
            for token_id, body in tokens.items():
                check_token_id(token_id)
                new_tokens.pop(token_id, None)
                if body is not None:
                    new_tokens[token_id] = parse_token(dict(body), changed)
            return replace(changed, tokens=new_tokens)

        def write_area() -> None:
            self._header.write(new.keyslot.area_offset, new.area)
            self._header.sync()

        def wipe_old() -> None:
            if old_area is not None:
                self._wipe(*old_area)

        self._mutate(change, before_commit=write_area, after_commit=wipe_old)
        return slot_id

    def _digest_for(self, key: VolumeKey) -> int:
        for i, digest in self.metadata.digests.items():
            if key_matches(digest, key.material):
                return i
        raise NoKeyError(f"{self._header.name}: the volume key does not match")

    def _wipe(self, offset: int, size: int) -> None:
        self._header.write(offset, os.urandom(size))
        self._header.sync()

    def change_key(
        self,
        passphrase: Secret,
        new_passphrase: Secret,
        *,
        keyslot: int | None = None,
        kdf: KdfSettings | None = None,
    ) -> int:
        """Replace the passphrase of the slot ``passphrase`` opens; the slot keeps its number.

        The new key material goes to a fresh area first; the old area is wiped only after the header
        commit, so a crash at any point leaves the old or the new passphrase working.
        """
        self._check_writable()
        key = self.unlock(passphrase, keyslot=keyslot)
        assert key.keyslot is not None
        old = self.keyslots[key.keyslot]
        with faults.crash_scope("key-change"):
            return self._store_key(
                key,
                _secret(new_passphrase),
                keyslot=None,
                kdf=kdf,
                priority=old.priority,
                replace_slot=key.keyslot,
            )

    def enrol_key(
        self,
        keyslot: int,
        new_passphrase: Secret,
        *,
        volume_key: VolumeKey | bytes,
        kdf: KdfSettings | None = None,
        tokens: Mapping[int, Mapping[str, Any] | None] | None = None,
    ) -> int:
        """Make ``new_passphrase`` the key of slot ``keyslot``: added if the slot is free, else replaced.

        A replacement is never kill-then-add: the new material goes to a free part of the key slot area,
        one header commit points the slot at it (same number, same priority, ``tokens`` changed in that same
        commit: ``{id: body}`` stores a token, ``{id: None}`` removes one), and only then is the old area
        wiped. A crash at any write leaves the slot opening with its old or its new key (and the old key
        with its old tokens). ``volume_key`` authorises it (no slot is opened).

        Raises:
            NoSpaceError: the key slot area has no free gap for the new material; nothing was changed.
        """
        self._check_writable()
        if not 0 <= keyslot < MAX_KEYSLOTS:
            raise InvalidMetadataError(f"key slot {keyslot} is out of range 0..{MAX_KEYSLOTS - 1}")
        key = self.check_volume_key(volume_key)
        old = self.keyslots.get(keyslot)
        if old is None and keyslot in self.metadata.keyslots:
            raise InvalidMetadataError(f"key slot {keyslot} is in use by a key slot of another type")
        with faults.crash_scope("key-change"):
            return self._store_key(
                key,
                _secret(new_passphrase),
                keyslot=keyslot,
                kdf=kdf,
                priority=None if old is None else old.priority,
                replace_slot=None if old is None else keyslot,
                tokens=tokens,
            )

    def kill_slot(self, keyslot: int) -> None:
        """Wipe the slot's area and drop it from the digests and the tokens' keyslot lists."""
        self._check_writable()
        if keyslot not in self.metadata.keyslots:
            raise InvalidMetadataError(f"key slot {keyslot} is not active")
        slot = self.metadata.keyslots[keyslot]

        def change(current: Metadata) -> Metadata:
            keyslots = {i: s for i, s in current.keyslots.items() if i != keyslot}
            digests = {
                i: replace(d, keyslots=tuple(k for k in d.keyslots if k != keyslot))
                for i, d in current.digests.items()
            }
            tokens = {
                i: t.with_keyslots(tuple(k for k in t.keyslots if k != keyslot))
                if keyslot in t.keyslots
                else t
                for i, t in current.tokens.items()
            }
            return replace(current, keyslots=keyslots, digests=digests, tokens=tokens)

        self._mutate(change, before_commit=lambda: self._wipe(slot.area_offset, slot.area_size))

    def set_priority(self, keyslot: int, priority: int | None) -> None:
        """0 = ignore unless named, 1/None = normal, 2 = prefer (cryptsetup config --priority)."""
        self._check_writable()
        slot = self.keyslots.get(keyslot)
        if slot is None:
            raise InvalidMetadataError(f"key slot {keyslot} is not active")
        if priority not in (None, 0, 1, 2):
            raise InvalidMetadataError(f"priority {priority} is not 0 (ignore), 1 (normal) or 2 (prefer)")
        value = None if priority == 1 else priority

        def change(current: Metadata) -> Metadata:
            keyslots = dict(current.keyslots)
            keyslots[keyslot] = replace(slot, priority=value)
            return replace(current, keyslots=keyslots)

        self._mutate(change)

    def set_label(self, label: str | None = None, subsystem: str | None = None) -> None:
        """Set the header label and/or subsystem (cryptsetup config --label/--subsystem)."""
        self._check_writable()
        if label is not None:
            check_label(label, "label", LABEL_MAX)
        if subsystem is not None:
            check_label(subsystem, "subsystem", SUBSYSTEM_MAX)
        self._mutate(lambda m: m, label=label, subsystem=subsystem)

    # ---- tokens -------------------------------------------------------------------------------------------

    def import_token(
        self,
        token: str | bytes | dict[str, Any],
        *,
        token_id: int | None = None,
        replace_existing: bool = False,
    ) -> int:
        """Store a token (JSON text or dict) validated like cryptsetup; returns its id."""
        self._check_writable()
        meta = self.metadata
        parsed = parse_token(token, meta)
        if token_id is None:
            free = [i for i in range(MAX_TOKENS) if i not in meta.tokens]
            if not free:
                raise InvalidMetadataError("all 32 token ids are in use")
            token_id = free[0]
        check_token_id(token_id)
        if token_id in meta.tokens and not replace_existing:
            raise InvalidMetadataError(f"token {token_id} already exists")

        def change(current: Metadata) -> Metadata:
            tokens = dict(current.tokens)
            tokens[token_id] = parsed
            return replace(current, tokens=tokens)

        self._mutate(change)
        return token_id

    def export_token(self, token_id: int) -> str:
        """The token's JSON text (compact)."""
        check_token_id(token_id)
        token = self.metadata.tokens.get(token_id)
        if token is None:
            raise InvalidMetadataError(f"token {token_id} does not exist")
        return export_token(token)

    def remove_token(self, token_id: int) -> None:
        self._check_writable()
        check_token_id(token_id)
        if token_id not in self.metadata.tokens:
            raise InvalidMetadataError(f"token {token_id} does not exist")
        self._mutate(lambda m: replace(m, tokens={i: t for i, t in m.tokens.items() if i != token_id}))
