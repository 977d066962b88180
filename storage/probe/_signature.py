"""What a probe finds: the type of a signature, its label and UUID, and where its magic bytes are."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, final


class SignatureType(enum.StrEnum):
    """Signature kinds, named as Talos and volumed talk about them (``luks``, ``xfs``, ...)."""

    LUKS = "luks"
    XFS = "xfs"
    EXT2 = "ext2"
    EXT3 = "ext3"
    EXT4 = "ext4"
    BTRFS = "btrfs"
    SWAP = "swap"
    VFAT = "vfat"
    LVM2 = "lvm2"
    GPT = "gpt"
    MBR = "mbr"


#: The ``TYPE`` (or ``PTTYPE``) blkid reports for each kind.
BLKID_TYPES: Final[dict[SignatureType, str]] = {
    SignatureType.LUKS: "crypto_LUKS",
    SignatureType.XFS: "xfs",
    SignatureType.EXT2: "ext2",
    SignatureType.EXT3: "ext3",
    SignatureType.EXT4: "ext4",
    SignatureType.BTRFS: "btrfs",
    SignatureType.SWAP: "swap",
    SignatureType.VFAT: "vfat",
    SignatureType.LVM2: "LVM2_member",
    SignatureType.GPT: "gpt",
    SignatureType.MBR: "dos",
}

_FILESYSTEMS: Final = frozenset(
    {
        SignatureType.XFS,
        SignatureType.EXT2,
        SignatureType.EXT3,
        SignatureType.EXT4,
        SignatureType.BTRFS,
        SignatureType.SWAP,
        SignatureType.VFAT,
    }
)
_PARTITION_TABLES: Final = frozenset({SignatureType.GPT, SignatureType.MBR})


@final
@dataclass(frozen=True)
class Signature:
    """A signature found on a region.

    ``magics`` are the ``(offset, length)`` byte ranges that identify it (primary and backup copies);
    zeroing them all makes the region stop probing as this type, as ``wipefs`` does.
    ``uuid`` is formatted as blkid shows it (lower-case UUIDs, ``XXXX-XXXX`` for vfat).

    The sizes are those Talos v1.12's probe (go-blockdevice's blkid) reports, read from the superblock;
    0 where the format has none or the superblock's values are not sane: ``block_size`` the unit the format
    addresses the device in (xfs: its sector size; ext: its block size; vfat: its sector size; swap: its
    page size; btrfs: its sector size; GPT: the disk's sector size), ``filesystem_block_size`` its
    allocation unit (xfs, ext: the block size; vfat: the cluster size; swap: the page size; btrfs: the node
    size), ``probed_size`` the bytes the superblock says it spans (xfs: the data blocks less an internal
    log; ext: the block count; vfat: the sector count; swap: pages up to the last one; btrfs: total_bytes;
    GPT: the usable LBAs), all in bytes.
    """

    type: SignatureType
    magics: tuple[tuple[int, int], ...]
    label: str | None = None
    uuid: str | None = None
    version: str | None = None
    block_size: int = 0
    filesystem_block_size: int = 0
    probed_size: int = 0

    @property
    def blkid_type(self) -> str:
        """The name blkid uses for this type (``crypto_LUKS``, ``LVM2_member``, ``dos``, ...)."""
        return BLKID_TYPES[self.type]

    @property
    def is_filesystem(self) -> bool:
        """A filesystem (swap included), as opposed to LUKS, LVM or a partition table."""
        return self.type in _FILESYSTEMS

    @property
    def is_partition_table(self) -> bool:
        """A whole-disk partition table (GPT or MBR)."""
        return self.type in _PARTITION_TABLES
