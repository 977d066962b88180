"""The LUKS2 binary header (``struct luks2_hdr_disk`` of cryptsetup 2.6), parsed and serialised symmetrically.

Layout (big-endian integers), from the LUKS2 On-Disk Format Specification v1.1.1, section 2.1::

    char     magic[6];          /* LUKS\\xba\\xbe (primary) or SKUL\\xba\\xbe (secondary) */
    uint16_t version;           /* 2 */
    uint64_t hdr_size;          /* binary header + JSON area, in bytes */
    uint64_t seqid;             /* sequence id, increased on every update */
    char     label[48];         /* ASCII label or empty */
    char     checksum_alg[32];  /* checksum algorithm, "sha256" */
    uint8_t  salt[64];          /* salt, unique for every header copy */
    char     uuid[40];          /* UUID of the device */
    char     subsystem[48];     /* owner subsystem label or empty */
    uint64_t hdr_offset;        /* offset from device start in bytes */
    char     _padding[184];     /* must be zeroed */
    uint8_t  csum[64];          /* header checksum */
    char     _padding4096[7*512]; /* padding, must be zeroed */
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field, replace

from ._errors import InvalidHeaderError

MAGIC_PRIMARY = b"LUKS\xba\xbe"
MAGIC_SECONDARY = b"SKUL\xba\xbe"
VERSION = 2
BINARY_HEADER_SIZE = 4096
LABEL_MAX = 47
SUBSYSTEM_MAX = 47
CHECKSUM_ALG = "sha256"

#: Allowed ``hdr_size`` values; also where a secondary header is searched when the primary is unreadable.
HEADER_SIZES: tuple[int, ...] = tuple(16384 << i for i in range(9))

_FMT = ">6sHQQ48s32s64s40s48sQ184s64s"
_CSUM_OFFSET = 0x1C0
_CSUM_SIZE = 64
assert struct.calcsize(_FMT) == 512


def _cstr(raw: bytes, what: str) -> str:
    text = raw.split(b"\0", 1)[0]
    try:
        return text.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidHeaderError(f"binary header: {what} is not ASCII") from None


@dataclass(frozen=True)
class BinaryHeader:
    """One copy of the binary header; ``salt`` and ``csum`` are kept out of the repr."""

    hdr_size: int
    seqid: int
    label: str
    uuid: str
    subsystem: str
    hdr_offset: int
    checksum_alg: str = CHECKSUM_ALG
    salt: bytes = field(default=bytes(64), repr=False)
    csum: bytes = field(default=bytes(_CSUM_SIZE), repr=False)

    @property
    def is_primary(self) -> bool:
        return self.hdr_offset == 0

    @property
    def json_size(self) -> int:
        return self.hdr_size - BINARY_HEADER_SIZE

    @classmethod
    def parse(cls, raw: bytes, *, where: int) -> BinaryHeader:
        """Parse 4096 bytes read at ``where``; checks magic, version and sizes (not the checksum)."""
        if len(raw) < BINARY_HEADER_SIZE:
            raise InvalidHeaderError(f"binary header at offset {where}: truncated ({len(raw)} bytes)")
        (magic, version, hdr_size, seqid, label, alg, salt, uuid, subsystem, hdr_offset, _pad, csum) = (
            struct.unpack_from(_FMT, raw)
        )
        expected = MAGIC_PRIMARY if where == 0 else MAGIC_SECONDARY
        if magic != expected:
            raise InvalidHeaderError(f"binary header at offset {where}: bad magic")
        if version != VERSION:
            raise InvalidHeaderError(f"binary header at offset {where}: unsupported version {version}")
        if hdr_size not in HEADER_SIZES:
            raise InvalidHeaderError(f"binary header at offset {where}: invalid hdr_size {hdr_size}")
        if hdr_offset != where:
            raise InvalidHeaderError(
                f"binary header at offset {where}: hdr_offset {hdr_offset} does not match its position"
            )
        return cls(
            hdr_size=hdr_size,
            seqid=seqid,
            label=_cstr(label, "label"),
            uuid=_cstr(uuid, "uuid"),
            subsystem=_cstr(subsystem, "subsystem"),
            hdr_offset=hdr_offset,
            checksum_alg=_cstr(alg, "checksum_alg"),
            salt=salt,
            csum=csum,
        )

    def serialize(self, *, with_csum: bool = True) -> bytes:
        """The 4096 on-disk bytes; with ``with_csum=False`` the checksum field is zero."""
        magic = MAGIC_PRIMARY if self.is_primary else MAGIC_SECONDARY
        head = struct.pack(
            _FMT,
            magic,
            VERSION,
            self.hdr_size,
            self.seqid,
            self.label.encode("ascii"),
            self.checksum_alg.encode("ascii"),
            self.salt,
            self.uuid.encode("ascii"),
            self.subsystem.encode("ascii"),
            self.hdr_offset,
            bytes(184),
            self.csum if with_csum else bytes(_CSUM_SIZE),
        )
        return head + bytes(BINARY_HEADER_SIZE - len(head))

    def with_checksum(self, json_area: bytes) -> BinaryHeader:
        """This header with ``csum`` computed over itself (csum zeroed) and the full JSON area."""
        return replace(self, csum=compute_checksum(self, json_area))


def compute_checksum(header: BinaryHeader, json_area: bytes) -> bytes:
    """sha256(binary header with zero csum || whole JSON area), zero-padded to 64 bytes."""
    if header.checksum_alg != CHECKSUM_ALG:
        raise InvalidHeaderError(f"binary header: unsupported checksum algorithm {header.checksum_alg!r}")
    digest = hashlib.sha256(header.serialize(with_csum=False) + json_area).digest()
    return digest + bytes(_CSUM_SIZE - len(digest))
