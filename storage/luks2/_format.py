"""luksFormat: lay out a new header, one key slot and the data segment, the way cryptsetup 2.6 does.

A format interrupted (a power cut, kill -9) after its first non-zero write and before its key slot is in a
valid header leaves a device that is no longer blank and that no key opens. So that the next attempt may
format it again without ever taking somebody's data for such a leftover, a format writes, in this order:

1. zeros over both header areas;
2. both copies of a *pending* header (seqid 2; each copy one write of binary header and JSON, then fsync):
   the data segment, a digest of a throwaway key listing no key slot (cryptsetup needs one for the segment;
   its own luksFormat writes such a slot-less header first too), no key slot, and one token of type
   ``volumed-format-pending`` naming the header's UUID;
3. the random fill of the key slot area, then the slot's key material;
4. the final header (seqid 3: the key slot, the volume key's digest, no pending token), both copies.

`interrupted_format` recognises the states steps 2-4 can leave; step 1 leaves zeros. A header without key
slots that is not exactly such a pending one (e.g. every slot killed with ``cryptsetup luksKillSlot``) is not
recognised: that is somebody's volume, whatever can still open it.
"""

from __future__ import annotations

import os
import uuid as uuid_mod
from typing import TYPE_CHECKING, Any, Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from . import _header_io as hio
from . import faults
from ._c_luks2 import BINARY_HEADER_SIZE, BinaryHeader
from ._errors import DeviceError, InvalidMetadataError, Luks2Error
from ._kdf import PBKDF2_MIN_ITERATIONS, digest_iterations
from ._keyslots import build_keyslot, new_digest
from ._metadata import Config, Metadata, Segment, Token
from ._validate import validate

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._device import Region
    from ._options import FormatOptions

#: cryptsetup's luksFormat writes the empty header (seqid 1, 2) and then adds the first slot: seqid 3.
FORMAT_SEQID = 3
#: The slot-less header a format writes before anything else that is not zero (see the module docstring).
PENDING_SEQID: Final = FORMAT_SEQID - 1
FORMAT_PENDING_TOKEN_TYPE: Final = "volumed-format-pending"
_CHUNK = 4 * 1024 * 1024


def _random_fill(region: Region, start: int, end: int) -> None:
    """Fill [start, end) with random bytes: an AES-CTR keystream under a random key (fast, like cryptsetup's
    wipe with its RNG)."""
    encryptor = Cipher(algorithms.AES(os.urandom(32)), modes.CTR(os.urandom(16))).encryptor()
    zeros = bytes(_CHUNK)
    at = start
    while at < end:
        n = min(_CHUNK, end - at)
        region.write(at, encryptor.update(zeros[:n]))
        at += n


def format_regions(
    header: Region,
    data: Region,
    passphrase: bytes,
    opts: FormatOptions,
    *,
    detached: bool,
    volume_key: bytes | None = None,
    tokens: Mapping[int, dict[str, Any]] | None = None,
) -> None:
    """Write a complete new LUKS2 volume; the caller holds the exclusive lock on ``header``.

    ``tokens`` (id: JSON object) are part of the final header, committed with the key slot: a mark a caller
    needs from the moment the volume can be opened (volumed's mkfs-pending mark) is never missing from it.
    """
    hdr_size = opts.metadata_size
    keyslots_size, data_offset = opts.layout(detached=detached)
    data_bytes = data.size - data_offset
    if data_bytes <= 0:
        raise DeviceError(
            f"{data.name}: the device ({data.size} bytes) is too small for the data offset {data_offset}"
        )
    sector_size = opts.sector_size or (4096 if data_bytes % 4096 == 0 else 512)
    if data_bytes % sector_size:
        raise InvalidMetadataError(
            f"{data.name}: the data area ({data_bytes} bytes) is not a multiple of"
            f" the sector size {sector_size}"
        )
    if volume_key is None:
        volume_key = os.urandom(opts.key_size)
    elif len(volume_key) != opts.key_size:
        raise InvalidMetadataError(f"the volume key must be {opts.key_size} bytes")

    slot = build_keyslot(
        volume_key, passphrase, settings=opts.kdf, area_offset=2 * hdr_size, cipher=opts.cipher
    )
    if slot.keyslot.area_size > keyslots_size:
        raise InvalidMetadataError(f"the key slot area ({keyslots_size} bytes) is too small for one key slot")
    digest = new_digest(
        volume_key, iterations=digest_iterations(opts.kdf), keyslots=(opts.keyslot,), segments=(0,)
    )
    metadata = Metadata(
        keyslots={opts.keyslot: slot.keyslot},
        tokens={i: Token.from_dict(dict(body), f"token {i}") for i, body in (tokens or {}).items()},
        segments={
            0: Segment(
                type="crypt",
                offset=data_offset,
                size=None,
                iv_tweak=0,
                encryption=opts.cipher,
                sector_size=sector_size,
            )
        },
        digests={0: digest},
        config=Config(json_size=hdr_size - 4096, keyslots_size=keyslots_size),
    )
    if tokens:
        validate(metadata, hdr_size=hdr_size)  # a bad token fails here, before anything is written
    json_area = hio.encode_json_area(metadata, hdr_size - 4096)
    binary = BinaryHeader(
        hdr_size=hdr_size,
        seqid=FORMAT_SEQID,
        label=opts.label,
        uuid=opts.uuid or str(uuid_mod.uuid4()),
        subsystem=opts.subsystem,
        hdr_offset=0,
    )
    areas_end = 2 * hdr_size + keyslots_size
    if header.size < areas_end:
        if detached:
            _extend(header, areas_end)
        else:
            raise InvalidMetadataError(f"{header.name}: too small for the header and key slot areas")
    salts = (os.urandom(64), os.urandom(64))
    with faults.crash_scope("format"):
        header.write(0, bytes(2 * hdr_size))
        header.sync()
        _write_pending(header, binary, metadata, salts)
        slot_end = slot.keyslot.area_offset + len(slot.area)
        _random_fill(header, slot_end, areas_end)
        header.write(slot.keyslot.area_offset, slot.area)
        header.sync()
        hio.write_copies(header, binary, json_area, salts)


def _write_pending(
    header: Region, final: BinaryHeader, metadata: Metadata, salts: tuple[bytes, bytes]
) -> None:
    """Step 2: both copies of the pending header, each in one write over the zeroed area, then fsync.

    One write per copy: a killed process leaves a copy zero or complete, never a half-written header nobody
    could tell from somebody's data. Its digest is of a key nobody has, so nothing ever opens it.
    """
    throwaway = os.urandom(64)
    digest = new_digest(throwaway, iterations=PBKDF2_MIN_ITERATIONS, keyslots=(), segments=(0,))
    token = {"type": FORMAT_PENDING_TOKEN_TYPE, "keyslots": [], "uuid": final.uuid}
    pending = Metadata(
        keyslots={},
        tokens={0: Token(type=FORMAT_PENDING_TOKEN_TYPE, keyslots=(), body=token)},
        segments=metadata.segments,
        digests={0: digest},
        config=metadata.config,
    )
    json_area = hio.encode_json_area(pending, final.json_size)
    for which, at in enumerate((0, final.hdr_size)):
        copy = BinaryHeader(
            hdr_size=final.hdr_size,
            seqid=PENDING_SEQID,
            label=final.label,
            uuid=final.uuid,
            subsystem=final.subsystem,
            hdr_offset=at,
            salt=salts[which],
        ).with_checksum(json_area)
        header.write(at, copy.serialize() + json_area)
        header.sync()


def interrupted_format(header: Region) -> str | None:
    """The UUID of a format of ours that ``header`` holds unfinished (no key can open it), else None.

    Reads only (blocking). Recognised are exactly the states an interrupted `format_regions` leaves after
    its first non-zero write: a pending primary with its secondary area still zero; two pending copies;
    and, while the final header is written, a primary with a zero checksum at seqid 3 over a pending
    secondary of the same UUID. "Pending": seqid 2, no key slot, no digest listing one, and no token but one
    ``volumed-format-pending`` naming the header's UUID. Whether the rest of the device holds another
    signature is the caller's question (libblkid's and the probe's).
    """
    try:
        primary = hio.read_copy(header, 0)
    except Luks2Error:  # not a valid copy, whatever the reason
        return _final_write_begun(header)
    if not _pending(primary):
        return None
    size = primary.binary.hdr_size
    try:
        secondary = hio.read_copy(header, size)
    except Luks2Error:  # not a valid copy, whatever the reason
        area = header.read(size, size)
        return primary.binary.uuid if len(area) == size and not any(area) else None
    return (
        primary.binary.uuid if _pending(secondary) and secondary.binary.uuid == primary.binary.uuid else None
    )


def _final_write_begun(header: Region) -> str | None:
    """Step 4 stopped inside the primary copy: a binary header without checksum over a pending secondary."""
    try:
        binary = BinaryHeader.parse(header.read(0, BINARY_HEADER_SIZE), where=0)
    except Luks2Error:  # not a valid copy, whatever the reason
        return None
    if any(binary.csum) or binary.seqid != FORMAT_SEQID:
        return None
    try:
        secondary = hio.read_copy(header, binary.hdr_size)
    except Luks2Error:  # not a valid copy, whatever the reason
        return None
    return binary.uuid if _pending(secondary) and secondary.binary.uuid == binary.uuid else None


def _pending(copy: hio.HeaderCopy) -> bool:
    meta = copy.metadata
    tokens = list(meta.tokens.values())
    return (
        copy.binary.seqid == PENDING_SEQID
        and not meta.keyslots
        and not any(d.keyslots for d in meta.digests.values())
        and len(tokens) == 1
        and tokens[0].type == FORMAT_PENDING_TOKEN_TYPE
        and tokens[0].body.get("uuid") == copy.binary.uuid
    )


def _extend(region: Region, size: int) -> None:
    """Grow a detached header file to ``size`` bytes (sparse), as cryptsetup sizes its header files."""
    region.write(size - 1, b"\0")
