"""DiscoveredVolume: a partition or whole disk found by probing, with what it contains."""

from __future__ import annotations

from volumed.runtime import PrintColumn, ResourceDefinition, Spec

from .._namespaces import BLOCK, type_name


class DiscoveredVolumeSpec(Spec):
    """A region of a disk and the signature found on it.

    Attributes:
        dev_path: the device to open (a partition node, or the disk image for image-backed volumes).
        parent: the disk this volume is on (``dev_path`` of its Disk), empty for a whole disk.
        offset: byte offset of the volume inside ``dev_path`` (non-zero only for partitions of image files).
        size: the volume's size in bytes.
        sector_size: the logical sector size in bytes.
        partition_index: the GPT partition number (from 1); 0 for a whole disk.
        partition_label: the GPT partition name (what volume configs locate volumes by: ``STATE``, ...).
        partition_uuid: the GPT partition's unique GUID.
        partition_type: the GPT partition type GUID.
        name: the probed signature (``luks``, ``xfs``, ``ext4``, ...), empty when nothing was found.
        label: the label of the probed signature (filesystem or LUKS2 label), empty when none.
        uuid: the UUID of the probed signature (filesystem or LUKS2 UUID), empty when none.
        io_size: the I/O size of the volume's disk as Talos reads it (optimal, else minimum I/O size, a
            power of two), in bytes; 512 for a volume of a disk image (go-blockdevice's default).
        block_size: the unit the probed signature addresses its device in, from its superblock (xfs and
            btrfs: sector size; ext: block size; vfat: sector size; swap: page size; GPT: sector size), in
            bytes; 0 when the signature has none (LUKS, LVM2, nothing found).
        filesystem_block_size: the probed filesystem's allocation unit (xfs, ext: block size; vfat: cluster
            size; swap: page size; btrfs: node size), in bytes; 0 when it has none.
        probed_size: the bytes the probed signature's superblock says it spans (xfs: data blocks less an
            internal log; ext: block count; vfat: sector count; swap: pages up to the last; btrfs:
            total_bytes; GPT: the usable LBAs); 0 when it says nothing.
        device_path: the device's directory in sysfs (``/sys/devices/.../block/sda``, a partition's under
            its disk's), as Talos' Device holds it; empty for a volume of a disk image.
        error: why this volume must not be used: its disk's partition table is invalid (overlapping
            partitions, a volume label twice, ...) or unreadable (then a system volume found on no readable
            disk is listed on it, "missing; disk X has an unreadable partition table: ..."). Such a volume is
            listed so its status can say why; it is not probed, and nothing locates, opens or writes it (its
            offset and size are not trusted: 0).
    """

    dev_path: str
    parent: str = ""
    offset: int = 0
    size: int
    sector_size: int = 512
    partition_index: int = 0
    partition_label: str = ""
    partition_uuid: str = ""
    partition_type: str = ""
    name: str = ""
    label: str = ""
    uuid: str = ""
    io_size: int = 0
    block_size: int = 0
    filesystem_block_size: int = 0
    probed_size: int = 0
    device_path: str = ""
    error: str = ""


DiscoveredVolumeDefinition: ResourceDefinition[DiscoveredVolumeSpec] = ResourceDefinition(
    type=type_name("DiscoveredVolumes", BLOCK),
    spec_model=DiscoveredVolumeSpec,
    default_namespace=BLOCK,
    aliases=("dv", "discoveredvolume", "discoveredvolumes"),
    print_columns=(
        PrintColumn("Path", "dev_path"),
        PrintColumn("Partition", "partition_label"),
        PrintColumn("Size", "size"),
        PrintColumn("Type", "name"),
        PrintColumn("Label", "label"),
    ),
)
