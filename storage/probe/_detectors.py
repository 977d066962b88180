"""One detector per signature type: each reads a few fixed offsets and returns a Signature or None.

Offsets and fields are from the formats' own definitions: cryptsetup's luks2_hdr_disk and LUKS1
phdr, xfs_dsb, ext4_super_block, btrfs_super_block, the Linux swap header, the FAT boot sector,
LVM2's label_header/pv_header, the UEFI GPT header and the MBR.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import Final

from ._signature import Signature, SignatureType

#: ``read(offset, length) -> bytes``; may return fewer bytes past the end of the region.
ReadAt = Callable[[int, int], bytes]
Detector = Callable[[ReadAt, int], "Signature | None"]

_LUKS_MAGIC: Final = b"LUKS\xba\xbe"
_LUKS2_SECONDARY_MAGIC: Final = b"SKUL\xba\xbe"
# cryptsetup places the LUKS2 secondary header at one of these offsets (the primary's hdr_size).
_LUKS2_SECONDARY_OFFSETS: Final = (
    0x4000,
    0x8000,
    0x10000,
    0x20000,
    0x40000,
    0x80000,
    0x100000,
    0x200000,
    0x400000,
)
_BTRFS_SUPER_OFFSETS: Final = (0x10000, 0x4000000, 0x4000000000)
_SWAP_PAGE_SIZES: Final = (4096, 8192, 16384, 32768, 65536)


def _text(raw: bytes, encoding: str = "utf-8") -> str | None:
    value = raw.split(b"\0", 1)[0].decode(encoding, errors="replace").strip()
    return value or None


def _uuid(raw: bytes) -> str | None:
    return None if raw == bytes(16) or len(raw) != 16 else str(uuid.UUID(bytes=raw))


def _pow2(value: int, low: int, high: int) -> bool:
    """``value`` is a power of two within ``low``..``high``: a superblock's size field that can be trusted."""
    return low <= value <= high and value & (value - 1) == 0


def detect_luks(read: ReadAt, size: int) -> Signature | None:
    """LUKS1 or LUKS2: primary magic at 0, or (LUKS2) a secondary header at a known offset."""
    head = read(0, 208)
    if head[:6] == _LUKS_MAGIC and len(head) >= 208:
        version = struct.unpack_from(">H", head, 6)[0]
        magics = [(0, 6)]
        label = None
        if version == 2:
            hdr_size = struct.unpack_from(">Q", head, 8)[0]
            label = _text(head[24:72])
            if 0 < hdr_size < size and read(hdr_size, 6) == _LUKS2_SECONDARY_MAGIC:
                magics.append((hdr_size, 6))
        return Signature(
            SignatureType.LUKS,
            tuple(magics),
            label=label,
            uuid=_text(head[168:208], "ascii"),
            version=str(version),
        )
    for offset in _LUKS2_SECONDARY_OFFSETS:
        if offset + 4096 > size:
            break
        sec = read(offset, 208)
        if sec[:6] == _LUKS2_SECONDARY_MAGIC and sec[6:8] == b"\x00\x02":
            return Signature(
                SignatureType.LUKS,
                ((offset, 6),),
                label=_text(sec[24:72]),
                uuid=_text(sec[168:208], "ascii"),
                version="2",
            )
    return None


def detect_xfs(read: ReadAt, size: int) -> Signature | None:
    """XFS: ``XFSB`` at 0; uuid at 32, 12-byte label at 108.

    Sizes (xfs_dsb, big-endian): sb_blocksize at 4, sb_dblocks at 8, sb_logstart at 48, sb_logblocks at
    96, sb_sectsize at 102. The probed size is the data blocks less the log when the log is internal
    (sb_logstart set), as Talos (and libblkid's FSSIZE) count it.
    """
    sb = read(0, 120)
    if len(sb) < 120 or sb[:4] != b"XFSB":
        return None
    (blocksize,) = struct.unpack_from(">I", sb, 4)
    dblocks, logstart = struct.unpack_from(">Q", sb, 8)[0], struct.unpack_from(">Q", sb, 48)[0]
    logblocks, sectsize = struct.unpack_from(">I", sb, 96)[0], struct.unpack_from(">H", sb, 102)[0]
    sane = _pow2(blocksize, 512, 65536) and _pow2(sectsize, 512, 32768) and dblocks > 0
    data_blocks = dblocks - (logblocks if logstart else 0)
    return Signature(
        SignatureType.XFS,
        ((0, 4),),
        label=_text(sb[108:120]),
        uuid=_uuid(sb[32:48]),
        block_size=sectsize if sane else 0,
        filesystem_block_size=blocksize if sane else 0,
        probed_size=data_blocks * blocksize if sane and data_blocks > 0 else 0,
    )


# ext4_super_block feature bits that ext2 lacks (ext3 adds only the journal).
_EXT3_JOURNAL: Final = 0x0004  # COMPAT_HAS_JOURNAL
_EXT_JOURNAL_DEV: Final = 0x0008  # INCOMPAT_JOURNAL_DEV
_EXT2_INCOMPAT: Final = 0x0002 | 0x0010  # FILETYPE | META_BG
_EXT3_INCOMPAT: Final = _EXT2_INCOMPAT | 0x0004  # | RECOVER
_EXT2_RO_COMPAT: Final = 0x0001 | 0x0002 | 0x0004  # SPARSE_SUPER | LARGE_FILE | BTREE_DIR
_EXT4_64BIT: Final = 0x0080  # INCOMPAT_64BIT: s_blocks_count_hi (at 0x150) holds the high 32 bits


def detect_ext(read: ReadAt, size: int) -> Signature | None:
    """ext2/3/4: magic 0xEF53 at 1024+56; version from the feature flags as blkid decides it.

    Sizes (ext4_super_block, little-endian): the block size is 1024 << s_log_block_size (at 24), the
    probed size s_blocks_count (at 4, with s_blocks_count_hi at 0x150 on a 64bit filesystem) blocks.
    """
    sb = read(1024, 0x154)
    if len(sb) < 264 or sb[56:58] != b"\x53\xef":
        return None
    compat, incompat, ro_compat = struct.unpack_from("<III", sb, 92)
    if incompat & _EXT_JOURNAL_DEV:
        return None  # an external journal, not a filesystem
    if compat & _EXT3_JOURNAL:
        plain = not (incompat & ~_EXT3_INCOMPAT) and not (ro_compat & ~_EXT2_RO_COMPAT)
        kind = SignatureType.EXT3 if plain else SignatureType.EXT4
    else:
        plain = not (incompat & ~_EXT2_INCOMPAT) and not (ro_compat & ~_EXT2_RO_COMPAT)
        kind = SignatureType.EXT2 if plain else SignatureType.EXT4
    (log_block_size,) = struct.unpack_from("<I", sb, 24)
    block_size = 1024 << log_block_size if log_block_size <= 6 else 0  # 1 KiB .. 64 KiB
    (blocks,) = struct.unpack_from("<I", sb, 4)
    if incompat & _EXT4_64BIT and len(sb) >= 0x154:
        blocks |= struct.unpack_from("<I", sb, 0x150)[0] << 32
    return Signature(
        kind,
        ((1024 + 56, 2),),
        label=_text(sb[120:136]),
        uuid=_uuid(sb[104:120]),
        block_size=block_size,
        filesystem_block_size=block_size,
        probed_size=blocks * block_size,
    )


def detect_btrfs(read: ReadAt, size: int) -> Signature | None:
    """btrfs: ``_BHRfS_M`` at 64 KiB + 0x40 (mirrors at 64 MiB and 256 GiB); fsid at +0x20, label +0x12b.

    Sizes (btrfs_super_block, little-endian): total_bytes at 0x70, sectorsize at 0x90, nodesize at 0x94;
    Talos reports the sector size, the node size (as its filesystem block size) and total_bytes.
    """
    sb = read(0x10000, 0x12B + 256)
    if len(sb) < 0x12B + 256 or sb[0x40:0x48] != b"_BHRfS_M":
        return None
    magics = [
        (off + 0x40, 8)
        for off in _BTRFS_SUPER_OFFSETS
        if off + 0x1000 <= size and read(off + 0x40, 8) == b"_BHRfS_M"
    ]
    (total_bytes,) = struct.unpack_from("<Q", sb, 0x70)
    sectorsize, nodesize = struct.unpack_from("<II", sb, 0x90)
    sane = _pow2(sectorsize, 512, 65536) and _pow2(nodesize, 512, 65536)
    return Signature(
        SignatureType.BTRFS,
        tuple(magics),
        label=_text(sb[0x12B:]),
        uuid=_uuid(sb[0x20:0x30]),
        block_size=sectorsize if sane else 0,
        filesystem_block_size=nodesize if sane else 0,
        probed_size=total_bytes if sane else 0,
    )


def detect_swap(read: ReadAt, size: int) -> Signature | None:
    """Linux swap: ``SWAPSPACE2`` in the last 10 bytes of the first page; uuid at 1036, label at 1052.

    Sizes (swap_header v1, little-endian as x86 and arm64 write it): the page size is where the magic
    ends, the probed size that many bytes per page up to ``last_page`` (at 1028, the header's version at
    1024 must be 1), as Talos counts it (the header page included, the last page not).
    """
    for page in _SWAP_PAGE_SIZES:
        if page > size:
            break
        magic = read(page - 10, 10)
        if magic in (b"SWAPSPACE2", b"SWAP-SPACE"):
            hdr = read(1024, 44)
            version = "1" if magic == b"SWAPSPACE2" else "0"
            header_version, last_page = struct.unpack_from("<II", hdr) if len(hdr) >= 8 else (0, 0)
            sized = version == "1" and header_version == 1 and last_page > 0
            return Signature(
                SignatureType.SWAP,
                ((page - 10, 10),),
                label=_text(hdr[28:44]) if version == "1" else None,
                uuid=_uuid(hdr[12:28]) if version == "1" else None,
                version=version,
                block_size=page if sized else 0,
                filesystem_block_size=page if sized else 0,
                probed_size=page * last_page if sized else 0,
            )
    return None


def detect_vfat(read: ReadAt, size: int) -> Signature | None:
    """FAT12/16/32: a boot sector with 0x55AA and the ``FATxx`` type string.

    Sizes (the BPB, little-endian): bytes per sector at 11, sectors per cluster at 13, the sector count at
    19 (16 bits), else at 32 (32 bits); kept only for a BPB Talos takes as valid (FATs and reserved
    sectors present, a media byte of 0xf0 or 0xf8..0xff, power-of-two sizes, sectors of 512..4096 bytes).
    """
    bs = read(0, 512)
    if len(bs) < 512 or bs[510:512] != b"\x55\xaa" or bs[0] not in (0xEB, 0xE9):
        return None
    if bs[82:87] == b"FAT32":
        serial_at, label_at, magic_at = 67, 71, 82
    elif bs[54:57] == b"FAT":
        serial_at, label_at, magic_at = 39, 43, 54
    else:
        return None
    serial = struct.unpack_from("<I", bs, serial_at)[0]
    label = _text(bs[label_at : label_at + 11], "latin-1")
    sector, per_cluster, reserved, fats = struct.unpack_from("<HBHB", bs, 11)
    (sectors,) = struct.unpack_from("<H", bs, 19)
    sectors = sectors or struct.unpack_from("<I", bs, 32)[0]
    sane = (
        fats > 0
        and reserved > 0
        and (bs[21] >= 0xF8 or bs[21] == 0xF0)
        and _pow2(per_cluster, 1, 128)
        and _pow2(sector, 512, 4096)
    )
    return Signature(
        SignatureType.VFAT,
        ((magic_at, 8), (510, 2)),
        label=None if label == "NO NAME" else label,
        uuid=f"{serial >> 16:04X}-{serial & 0xFFFF:04X}",
        block_size=sector if sane else 0,
        filesystem_block_size=sector * per_cluster if sane else 0,
        probed_size=sector * sectors if sane else 0,
    )


def detect_lvm2(read: ReadAt, size: int) -> Signature | None:
    """LVM2 physical volume: ``LABELONE`` + ``LVM2 001`` in one of the first four sectors."""
    for sector in range(4):
        label = read(sector * 512, 32)
        if label[:8] == b"LABELONE" and label[24:32] == b"LVM2 001":
            pv_offset = sector * 512 + struct.unpack_from("<I", label, 20)[0]
            raw = read(pv_offset, 32).decode("ascii", errors="replace")
            parts = (raw[0:6], raw[6:10], raw[10:14], raw[14:18], raw[18:22], raw[22:26], raw[26:32])
            return Signature(SignatureType.LVM2, ((sector * 512, 8),), uuid="-".join(parts), version="2")
    return None


def detect_gpt(read: ReadAt, size: int) -> Signature | None:
    """GPT: ``EFI PART`` at LBA 1 (512- or 4096-byte sectors); the disk GUID as its UUID.

    Sizes, as Talos reports a disk's GPT: the sector size, and the usable LBAs (first at 40, last at 48)
    in bytes as the probed size; no filesystem block size.
    """
    for sector_size in (512, 4096):
        hdr = read(sector_size, 72)
        if hdr[:8] == b"EFI PART" and len(hdr) == 72:
            magics = [(sector_size, 8), (510, 2)]
            backup = size - sector_size
            if backup > sector_size and read(backup, 8) == b"EFI PART":
                magics.append((backup, 8))
            first, last = struct.unpack_from("<QQ", hdr, 40)
            return Signature(
                SignatureType.GPT,
                tuple(magics),
                uuid=str(uuid.UUID(bytes_le=hdr[56:72])),
                block_size=sector_size,
                probed_size=(last - first + 1) * sector_size if last >= first else 0,
            )
    return None


def detect_mbr(read: ReadAt, size: int) -> Signature | None:
    """A DOS/MBR partition table: 0x55AA, valid boot flags and at least one used record."""
    sector = read(0, 512)
    if len(sector) < 512 or sector[510:512] != b"\x55\xaa":
        return None
    records = [sector[446 + 16 * i : 462 + 16 * i] for i in range(4)]
    if any(r[0] not in (0x00, 0x80) for r in records) or all(r[4] == 0 for r in records):
        return None
    disk_id = struct.unpack_from("<I", sector, 440)[0]
    return Signature(SignatureType.MBR, ((510, 2),), uuid=f"{disk_id:08x}")


#: Detectors in the order a probe reports them: containers first, then filesystems, then partition tables.
DETECTORS: Final[tuple[Detector, ...]] = (
    detect_luks,
    detect_xfs,
    detect_ext,
    detect_btrfs,
    detect_swap,
    detect_lvm2,
    detect_vfat,
    detect_gpt,
    detect_mbr,
)
