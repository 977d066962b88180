"""The loop driver's ioctl numbers and structures, from linux/loop.h (uapi)."""

from __future__ import annotations

import struct
from typing import Final

LOOP_MAJOR: Final = 7

LOOP_SET_FD: Final = 0x4C00
LOOP_CLR_FD: Final = 0x4C01
LOOP_SET_STATUS64: Final = 0x4C04
LOOP_GET_STATUS64: Final = 0x4C05
LOOP_CONFIGURE: Final = 0x4C0A
LOOP_CTL_GET_FREE: Final = 0x4C82

LO_FLAGS_READ_ONLY: Final = 1
LO_FLAGS_AUTOCLEAR: Final = 4
LO_FLAGS_PARTSCAN: Final = 8
LO_FLAGS_DIRECT_IO: Final = 16

LO_NAME_SIZE: Final = 64
# What ``lo_file_name`` of a loop device this package attached starts with: the kernel keeps the name as given
# (only LOOP_GET_STATUS64 reports it; sysfs ``backing_file`` and losetup's listing show the open file), set in
# the same ioctl as the attachment, so no crash can leave a device of volumed's unmarked.
OWNER_MARK: Final = b"volumed:"

# struct loop_info64 {
#     __u64 lo_device, lo_inode, lo_rdevice, lo_offset, lo_sizelimit;
#     __u32 lo_number, lo_encrypt_type, lo_encrypt_key_size, lo_flags;
#     __u8  lo_file_name[LO_NAME_SIZE], lo_crypt_name[LO_NAME_SIZE], lo_encrypt_key[32];
#     __u64 lo_init[2];
# };
LOOP_INFO64: Final = struct.Struct("=5Q4I64s64s32s2Q")

# struct loop_config { __u32 fd; __u32 block_size; struct loop_info64 info; __u64 __reserved[8]; };
LOOP_CONFIG: Final = struct.Struct("=II232s64s")


def loop_info64(*, offset: int, size_limit: int, flags: int, file_name: bytes) -> bytes:
    """Pack a loop_info64 with the fields this package sets (the rest zero)."""
    return LOOP_INFO64.pack(
        0, 0, 0, offset, size_limit, 0, 0, 0, flags, file_name[: LO_NAME_SIZE - 1], b"", b"", 0, 0
    )


def loop_config(*, fd: int, block_size: int, info: bytes) -> bytes:
    """Pack a loop_config for LOOP_CONFIGURE."""
    return LOOP_CONFIG.pack(fd, block_size, info, b"")
