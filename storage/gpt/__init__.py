"""GUID partition tables: read (with backup fallback), edit (add, remove, grow) and write both copies."""

from ._codec import ReadAt as ReadAt
from ._codec import decode_table as decode_table
from ._codec import encode_table as encode_table
from ._errors import CorruptTableError as CorruptTableError
from ._errors import GPTError as GPTError
from ._errors import InvalidTableError as InvalidTableError
from ._errors import LayoutError as LayoutError
from ._errors import NoPartitionTableError as NoPartitionTableError
from ._errors import ReadOnlyTableError as ReadOnlyTableError
from ._grow import MIN_GROWTH as MIN_GROWTH
from ._grow import PartitionGrowth as PartitionGrowth
from ._grow import fit_to_disk as fit_to_disk
from ._grow import grow_partition as grow_partition
from ._grow import grow_partition_on_disk as grow_partition_on_disk
from ._guids import BIOS_BOOT as BIOS_BOOT
from ._guids import EFI_SYSTEM as EFI_SYSTEM
from ._guids import LINUX_FILESYSTEM_DATA as LINUX_FILESYSTEM_DATA
from ._guids import LINUX_LVM as LINUX_LVM
from ._guids import LINUX_SWAP as LINUX_SWAP
from ._io import read_partition_table as read_partition_table
from ._io import write_partition_table as write_partition_table
from ._kernel import disk_holders as disk_holders
from ._kernel import kernel_partitions as kernel_partitions
from ._kernel import partition_held as partition_held
from ._kernel import partition_node as partition_node
from ._kernel import tell_kernel as tell_kernel
from ._kernel import whole_disk_users as whole_disk_users
from ._new import new_disk_table as new_disk_table
from ._new import write_new_disk_table as write_new_disk_table
from ._table import DEFAULT_ALIGNMENT as DEFAULT_ALIGNMENT
from ._table import Partition as Partition
from ._table import PartitionTable as PartitionTable
from ._table import new_table as new_table

__all__ = [
    "BIOS_BOOT",
    "DEFAULT_ALIGNMENT",
    "EFI_SYSTEM",
    "LINUX_FILESYSTEM_DATA",
    "LINUX_LVM",
    "LINUX_SWAP",
    "MIN_GROWTH",
    "CorruptTableError",
    "GPTError",
    "InvalidTableError",
    "LayoutError",
    "NoPartitionTableError",
    "Partition",
    "PartitionGrowth",
    "PartitionTable",
    "ReadAt",
    "ReadOnlyTableError",
    "decode_table",
    "disk_holders",
    "encode_table",
    "fit_to_disk",
    "grow_partition",
    "grow_partition_on_disk",
    "kernel_partitions",
    "new_disk_table",
    "new_table",
    "partition_held",
    "partition_node",
    "read_partition_table",
    "tell_kernel",
    "whole_disk_users",
    "write_new_disk_table",
    "write_partition_table",
]
