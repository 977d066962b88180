"""luksFormat: lay out a new header, one key slot and the data segment, the way cryptsetup 2.6 does."""

from __future__ import annotations

import os
import uuid as uuid_mod
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from . import _header_io as hio
from ._c_luks2 import BinaryHeader
from ._errors import DeviceError, InvalidMetadataError
from ._kdf import digest_iterations
from ._keyslots import build_keyslot, new_digest
from ._metadata import Config, Metadata, Segment

if TYPE_CHECKING:
    from ._device import Region
    from ._options import FormatOptions

#: cryptsetup's luksFormat writes the empty header (seqid 1, 2) and then adds the first slot: seqid 3.
FORMAT_SEQID = 3
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
) -> None:
    """Write a complete new LUKS2 volume; the caller holds the exclusive lock on ``header``."""
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
        tokens={},
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
    header.write(0, bytes(2 * hdr_size))
    slot_end = slot.keyslot.area_offset + len(slot.area)
    _random_fill(header, slot_end, areas_end)
    header.write(slot.keyslot.area_offset, slot.area)
    header.sync()
    hio.write_copies(header, binary, json_area, (os.urandom(64), os.urandom(64)))


def _extend(region: Region, size: int) -> None:
    """Grow a detached header file to ``size`` bytes (sparse), as cryptsetup sizes its header files."""
    region.write(size - 1, b"\0")
