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
