"""Disk: a whole block device or disk image the node can put volumes on."""

from __future__ import annotations

from volumed.runtime import PrintColumn, ResourceDefinition, Spec

from .._namespaces import BLOCK, type_name


class DiskSpec(Spec):
    """What discovery knows of a disk; the fields are what CEL disk selectors can match on.

    Attributes:
        dev_path: the device node (``/dev/sda``) or, for ``--disk`` images, the image file.
        size: the disk's size in bytes.
        model: the model the kernel reports (sysfs), empty when unknown.
        serial: the serial number the kernel reports, empty when unknown.
        transport: the bus the disk hangs off (``nvme``, ``usb``, ``virtio``, ``sata``, ``mmc``, ``scsi``),
            empty when unknown.
        rotational: the kernel reports a rotating disk.
        readonly: the kernel reports the disk read-only.
        sector_size: the logical sector size in bytes.
        symlinks: the disk's ``/dev/disk/by-*`` links, for disk selectors (discovery leaves it empty).
        image: true for a disk image file given on the command line rather than a block device.
    """

    dev_path: str
    size: int
    model: str = ""
    serial: str = ""
    transport: str = ""
    rotational: bool = False
    readonly: bool = False
    sector_size: int = 512
    symlinks: tuple[str, ...] = ()
    image: bool = False


DiskDefinition: ResourceDefinition[DiskSpec] = ResourceDefinition(
    type=type_name("Disks", BLOCK),
    spec_model=DiskSpec,
    default_namespace=BLOCK,
    aliases=("disk", "disks"),
    print_columns=(
        PrintColumn("Path", "dev_path"),
        PrintColumn("Size", "size"),
        PrintColumn("Model", "model"),
        PrintColumn("Transport", "transport"),
    ),
)
