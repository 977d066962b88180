"""Reading, repairing and committing the two LUKS2 header copies (cryptsetup's luks2_disk_metadata.c)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ._c_luks2 import BINARY_HEADER_SIZE, HEADER_SIZES, MAGIC_PRIMARY, BinaryHeader, compute_checksum
from ._errors import ConcurrentUpdateError, InvalidHeaderError, InvalidMetadataError, NotLuks2Error
from ._metadata import Metadata
from ._validate import validate

if TYPE_CHECKING:
    from ._device import Region


@dataclass(frozen=True)
class HeaderCopy:
    """One valid copy as read: its binary header, the raw JSON text and the parsed metadata."""

    binary: BinaryHeader
    json_text: bytes = field(repr=False)
    metadata: Metadata = field(repr=False)


@dataclass(frozen=True)
class HeaderState:
    """The header as the library sees it: the winning copy plus what was wrong with the other one."""

    binary: BinaryHeader
    json_text: bytes = field(repr=False)
    metadata: Metadata = field(repr=False)
    problems: tuple[str, ...] = ()
    salts: tuple[bytes, bytes] = field(default=(bytes(64), bytes(64)), repr=False)

    @property
    def seqid(self) -> int:
        return self.binary.seqid

    @property
    def hdr_size(self) -> int:
        return self.binary.hdr_size

    @property
    def needs_repair(self) -> bool:
        return bool(self.problems)


def read_copy(region: Region, at: int) -> HeaderCopy:
    """Read and fully check the copy at ``at``: magic, version, offset, checksum, JSON and its rules."""
    raw = region.read(at, BINARY_HEADER_SIZE)
    if len(raw) < BINARY_HEADER_SIZE:
        raise InvalidHeaderError(f"{region.name}: header at offset {at} is truncated")
    binary = BinaryHeader.parse(raw, where=at)
    if at and binary.hdr_size != at:
        raise InvalidHeaderError(f"{region.name}: header at offset {at} claims hdr_size {binary.hdr_size}")
    json_area = region.read(at + BINARY_HEADER_SIZE, binary.json_size)
    if len(json_area) < binary.json_size:
        raise InvalidHeaderError(f"{region.name}: JSON area at offset {at} is truncated")
    if compute_checksum(binary, json_area) != binary.csum:
        raise InvalidHeaderError(f"{region.name}: header at offset {at} has a bad checksum")
    end = json_area.find(b"\0")
    if end < 0:
        raise InvalidHeaderError(f"{region.name}: JSON area at offset {at} is not NUL-terminated")
    text = json_area[:end]
    if not text.startswith(b"{"):
        raise InvalidHeaderError(f"{region.name}: JSON area at offset {at} does not start with an object")
    try:
        metadata = Metadata.from_json(text)
        validate(metadata, hdr_size=binary.hdr_size)
    except InvalidMetadataError as exc:  # from the JSON text itself (nested too deep): this copy is invalid
        raise InvalidHeaderError(f"{region.name}: header at offset {at}: {exc}") from None
    except InvalidHeaderError as exc:
        raise InvalidHeaderError(f"{region.name}: header at offset {at}: {exc}") from None
    return HeaderCopy(binary=binary, json_text=text, metadata=metadata)


def load(region: Region) -> HeaderState:
    """Read both copies; the valid one with the higher seqid wins, the other is reported for repair.

    Raises:
        NotLuks2Error: no LUKS2 magic at offset 0 nor at any secondary offset.
        InvalidHeaderError: magic found but no copy is valid.
    """
    errors: list[str] = []
    primary: HeaderCopy | None = None
    try:
        primary = read_copy(region, 0)
    except InvalidHeaderError as exc:
        errors.append(str(exc))
    offsets = (primary.binary.hdr_size,) if primary else HEADER_SIZES
    secondary: HeaderCopy | None = None
    for at in offsets:
        try:
            secondary = read_copy(region, at)
            break
        except InvalidHeaderError as exc:
            if primary is not None or _has_secondary_magic(region, at):
                errors.append(str(exc))
    if primary is None and secondary is None:
        if len(errors) == 1 and "bad magic" in errors[0]:
            raise NotLuks2Error(f"{region.name}: not a LUKS2 device (no valid header magic)")
        raise InvalidHeaderError("; ".join(errors))
    if primary is not None and secondary is not None:
        salts = (primary.binary.salt, secondary.binary.salt)
        _check_same_volume(region, primary, secondary)
        if primary.binary.seqid > secondary.binary.seqid:
            return _state(primary, ("secondary header is stale (lower seqid)",), salts)
        if secondary.binary.seqid > primary.binary.seqid:
            return _state(secondary, ("primary header is stale (lower seqid)",), salts)
        return _state(primary, (), salts)
    if primary is not None:
        return _state(primary, ("secondary header is invalid",), (primary.binary.salt, os.urandom(64)))
    assert secondary is not None
    return _state(secondary, ("primary header is invalid",), (os.urandom(64), secondary.binary.salt))


def _check_same_volume(region: Region, primary: HeaderCopy, secondary: HeaderCopy) -> None:
    """Two valid copies of two volumes are ambiguous: neither is opened, nor rewritten over the other.

    cryptsetup takes the copy with the higher seqid; but a secondary copy of another volume (another UUID,
    another header size) is the leftover of an older format or somebody's bytes, and taking it would open
    (and later mkfs, or repair over the valid primary) the wrong volume. We are stricter: refuse.
    """
    p, s = primary.binary, secondary.binary
    if p.uuid != s.uuid or p.hdr_size != s.hdr_size:
        raise InvalidHeaderError(
            f"{region.name}: ambiguous LUKS2 header: the primary copy (UUID {p.uuid}, seqid {p.seqid}, "
            f"header size {p.hdr_size}) and the secondary copy (UUID {s.uuid}, seqid {s.seqid}, header size "
            f"{s.hdr_size}) are both valid but belong to different volumes; nothing is opened or repaired"
        )


def _has_secondary_magic(region: Region, at: int) -> bool:
    return region.read(at, 6) == b"SKUL\xba\xbe"


def _state(copy: HeaderCopy, problems: tuple[str, ...], salts: tuple[bytes, bytes]) -> HeaderState:
    primary_view = replace(copy.binary, hdr_offset=0)
    return HeaderState(
        binary=primary_view, json_text=copy.json_text, metadata=copy.metadata, problems=problems, salts=salts
    )


def encode_json_area(metadata: Metadata, json_size: int) -> bytes:
    """The JSON area bytes: compact JSON then NUL padding; InvalidMetadataError if it does not fit."""
    text = metadata.to_json()
    if len(text) > json_size - 1:
        raise InvalidMetadataError(
            f"metadata JSON is {len(text)} bytes, the JSON area holds at most {json_size - 1}"
        )
    return text + bytes(json_size - len(text))


def write_copies(
    region: Region,
    binary: BinaryHeader,
    json_area: bytes,
    salts: tuple[bytes, bytes],
    *,
    copies: tuple[int, ...] = (0, 1),
) -> None:
    """Write the selected copies (0 primary, 1 secondary) of one header state, copy i with ``salts[i]``.

    Per copy: the binary header with a zero checksum, the JSON area, then the binary header with its
    checksum, then fsync; a crash at any point leaves that copy invalid or complete, never half-valid.
    """
    for which in copies:
        at = 0 if which == 0 else binary.hdr_size
        copy = replace(binary, hdr_offset=at, salt=salts[which]).with_checksum(json_area)
        region.write(at, copy.serialize(with_csum=False))
        region.write(at + BINARY_HEADER_SIZE, json_area)
        region.sync()
        region.write(at, copy.serialize())
        region.sync()


def repair(region: Region, state: HeaderState) -> HeaderState:
    """Rewrite the bad or stale copy from the good one, with a fresh salt and the same seqid."""
    if not state.needs_repair:
        return state
    bad = 1 if any(p.startswith("secondary") for p in state.problems) else 0
    salts = list(state.salts)
    salts[bad] = os.urandom(64)
    new_salts = (salts[0], salts[1])
    write_copies(region, state.binary, encode_existing(state), new_salts, copies=(bad,))
    return replace(state, problems=(), salts=new_salts)


def repair_refusal(region: Region) -> str | None:
    """Why a bad header copy of ``region`` must not be rewritten, or None when it may be (blocking).

    cryptsetup's rule: a device with any signature besides LUKS (libblkid's, here with ours too) is
    ambiguous, and a rewritten primary header would land on somebody else's data. One rule more: the primary
    binary header area starts with the LUKS magic or is all zero (anything else there is data of a format
    nobody recognises, not a damaged header).
    """
    from volumed.storage.probe import BlkidError, SignatureType, blkid_probe, probe_all

    others = [s.blkid_type for s in probe_all(region.read, region.size) if s.type is not SignatureType.LUKS]
    try:
        fd: int | None = region.file.fileno()
    except (OSError, ValueError, AttributeError):
        fd = None  # an in-memory file (tests): our detectors only
    if fd is not None:
        try:
            report = blkid_probe(region.name, region.offset, region.size, fd=fd)
        except BlkidError as exc:
            return f"cannot check the device for other signatures ({exc})"
        others += [t for t in report.types if t != "crypto_LUKS"]
        if report.ambivalent:
            others.append("several signatures libblkid could not choose between")
    if others:
        return f"device contains ambiguous signatures (LUKS2 and {', '.join(dict.fromkeys(others))})"
    head = region.read(0, BINARY_HEADER_SIZE)
    if not head.startswith(MAGIC_PRIMARY) and head.count(0) != len(head):
        return "the primary header area holds data that is neither a LUKS header nor blank"
    return None


def encode_existing(state: HeaderState) -> bytes:
    """The JSON area of ``state`` as on disk (its original text, padded)."""
    size = state.binary.json_size
    return state.json_text + bytes(size - len(state.json_text))


def current_seqid(region: Region) -> int | None:
    """The seqid on disk now (highest valid copy), or None if no copy is valid."""
    try:
        return load(region).seqid
    except InvalidHeaderError:
        return None


def commit(
    region: Region,
    state: HeaderState,
    metadata: Metadata,
    *,
    label: str | None = None,
    subsystem: str | None = None,
) -> HeaderState:
    """Write ``metadata`` as seqid+1 into both copies, unless the header changed since ``state``.

    The caller holds the exclusive lock. Digests that list neither key slots nor segments are dropped, as
    cryptsetup does on write.
    """
    metadata = drop_empty_digests(metadata)
    validate(metadata, hdr_size=state.hdr_size)
    json_area = encode_json_area(metadata, state.binary.json_size)
    on_disk = current_seqid(region)
    if on_disk != state.seqid:
        raise ConcurrentUpdateError(
            f"{region.name}: the header changed on disk (seqid {state.seqid} -> {on_disk});"
            " nothing was written"
        )
    binary = replace(
        state.binary,
        seqid=state.seqid + 1,
        label=state.binary.label if label is None else label,
        subsystem=state.binary.subsystem if subsystem is None else subsystem,
    )
    write_copies(region, binary, json_area, state.salts)
    text = json_area[: json_area.index(b"\0")]
    return HeaderState(binary=binary, json_text=text, metadata=metadata, salts=state.salts)


def drop_empty_digests(metadata: Metadata) -> Metadata:
    digests = {i: d for i, d in metadata.digests.items() if d.keyslots or d.segments}
    if len(digests) == len(metadata.digests):
        return metadata
    return replace(metadata, digests=digests)
