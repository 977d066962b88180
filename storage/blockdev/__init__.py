"""Block devices and image files: sizes, regions (path + offset + size) and sysfs discovery."""

from ._device import device_size as device_size
from ._device import is_block_device as is_block_device
from ._device import logical_sector_size as logical_sector_size
from ._device import reread_partitions as reread_partitions
from ._disk_props import DiskProperties as DiskProperties
from ._disk_props import is_cdrom as is_cdrom
from ._disk_props import read_disk_properties as read_disk_properties
from ._errors import BlockDeviceError as BlockDeviceError
from ._errors import RegionBoundsError as RegionBoundsError
from ._identity import DataIdentity as DataIdentity
from ._identity import data_identity as data_identity
from ._lock import DEFAULT_LOCK_DIR as DEFAULT_LOCK_DIR
from ._lock import DiskBusyError as DiskBusyError
from ._lock import LockFile as LockFile
from ._lock import disk_key as disk_key
from ._lock import disk_lock_path as disk_lock_path
from ._lock import disk_owner as disk_owner
from ._lock import hold_lock_file as hold_lock_file
from ._lock import lock_disk as lock_disk
from ._lock import lock_holder as lock_holder
from ._region import Region as Region
from ._region import RegionHandle as RegionHandle
from ._sysfs import BlockDeviceInfo as BlockDeviceInfo
from ._sysfs import PartitionInfo as PartitionInfo
from ._sysfs import list_block_devices as list_block_devices
from ._sysfs import read_block_device as read_block_device
from ._units import format_size as format_size

__all__ = [
    "DEFAULT_LOCK_DIR",
    "BlockDeviceError",
    "BlockDeviceInfo",
    "DataIdentity",
    "DiskBusyError",
    "DiskProperties",
    "LockFile",
    "PartitionInfo",
    "Region",
    "RegionBoundsError",
    "RegionHandle",
    "data_identity",
    "device_size",
    "disk_key",
    "disk_lock_path",
    "disk_owner",
    "format_size",
    "hold_lock_file",
    "is_block_device",
    "is_cdrom",
    "list_block_devices",
    "lock_disk",
    "lock_holder",
    "logical_sector_size",
    "read_block_device",
    "read_disk_properties",
    "reread_partitions",
]
