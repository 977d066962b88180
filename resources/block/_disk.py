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
        serial: sysfs ``device/serial``, else for an ``ata`` disk udev's ``ata_id``'s ``ID_SERIAL`` (Talos'
            rule); empty otherwise (a virtio-blk disk's own ``serial`` attribute is not read, as in Talos).
        transport: the bus the disk hangs off, as Talos names it (``nvme``, ``virtio``, ``mmc``, ``sata``,
            ``ata``, ``sas``, ``fc``, ``iscsi``, ``usb``, ``ibp``), empty when unknown (loop, dm, zram).
        rotational: the kernel reports a rotating disk.
        readonly: the kernel reports the disk read-only.
        sector_size: the logical sector size in bytes.
        io_size: the optimal I/O size, else the minimum one, in bytes (a power of two; 512 when neither is).
        cdrom: the device is a CD/DVD drive.
        modalias: the device's ``modalias`` (sysfs ``device/modalias``), e.g. ``virtio:d00000002v00001AF4``.
        wwid: the world wide id (sysfs ``wwid`` or ``device/wwid``), e.g. ``naa.…``, ``eui.…``, ``t10.…``.
        uuid: the namespace UUID (sysfs ``uuid``: NVMe), empty for other disks.
        bus_path: where the device hangs under ``/sys/devices`` (``/pci0000:00/0000:00:04.0/virtio1``).
        sub_system: the sysfs subsystem (``/sys/class/block``).
        secondary_disks: the disks this one is built on (sysfs ``slaves``, a partition named by its disk,
            e.g. ``vda`` for a dm-crypt mapping of ``vda5``).
        symlinks: the ``/dev/disk/by-*`` links udev made to the disk, sorted (Talos' walk of ``/dev/disk``;
            empty for a disk image).
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
    io_size: int = 0
    cdrom: bool = False
    modalias: str = ""
    wwid: str = ""
    uuid: str = ""
    bus_path: str = ""
    sub_system: str = ""
    secondary_disks: tuple[str, ...] = ()
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
