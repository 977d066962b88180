"""Loop driver structures (linux/loop.h sizes) and sysfs parsing, on a fake /sys/block tree."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import pytest

from volumed.storage.loop import (
    LoopError,
    _abi,
    _sysfs,
    find_attachments,
    list_loop_devices,
    read_loop_device,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_struct_sizes_match_the_kernel_abi() -> None:
    assert _abi.LOOP_INFO64.size == 232
    assert _abi.LOOP_CONFIG.size == 304
    info = _abi.loop_info64(offset=4096, size_limit=8192, flags=_abi.LO_FLAGS_READ_ONLY, file_name=b"x" * 100)
    fields = _abi.LOOP_INFO64.unpack(info)
    assert fields[3:5] == (4096, 8192)
    assert fields[8] == _abi.LO_FLAGS_READ_ONLY
    assert fields[9] == b"x" * 63 + b"\0"  # NUL-terminated within LO_NAME_SIZE
    config = _abi.LOOP_CONFIG.unpack(_abi.loop_config(fd=7, block_size=4096, info=info))
    assert config[:3] == (7, 4096, info)


def fake_loop(
    sys_block: Path, number: int, *, backing: str | None, offset: int = 0, ro: bool = False
) -> None:
    device = sys_block / f"loop{number}"
    device.mkdir(parents=True)
    (device / "size").write_text("2048\n")
    (device / "ro").write_text("1\n" if ro else "0\n")
    if backing is not None:
        (device / "loop").mkdir()
        (device / "loop" / "backing_file").write_text(backing + "\n")
        (device / "loop" / "offset").write_text(f"{offset}\n")
        (device / "loop" / "sizelimit").write_text("0\n")
        (device / "loop" / "autoclear").write_text("1\n")


def test_sysfs_listing_and_finding(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(b"")
    sys_block = tmp_path / "sys"
    fake_loop(sys_block, 3, backing=str(image), offset=512, ro=True)
    fake_loop(sys_block, 1, backing="/elsewhere.img")
    fake_loop(sys_block, 2, backing=None)  # present but not attached
    fake_loop(sys_block, 4, backing=str(image) + " (deleted)")
    (sys_block / "vda").mkdir()
    devices = list_loop_devices(sys_block=sys_block)
    assert [device.number for device in devices] == [1, 3, 4]
    third = devices[1]
    assert (third.path, third.offset, third.size, third.read_only, third.autoclear) == (
        "/dev/loop3",
        512,
        1 << 20,
        True,
        True,
    )
    assert devices[2].backing_file_deleted
    assert find_attachments(image, sys_block=sys_block) == [third]
    assert find_attachments(image, offset=0, sys_block=sys_block) == []
    assert read_loop_device("/dev/loop2", sys_block=sys_block) is None
    with pytest.raises(LoopError, match="'/dev/sda' is not a loop device"):
        read_loop_device("/dev/sda", sys_block=sys_block)


def test_a_loop_device_detached_while_listed_is_not_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review23 (t8_burst): reading a loop device's sysfs attributes while another process detaches it fails
    with ENODEV; list_loop_devices raised it (status() of the fuse backend failed in 32 of 600 calls)."""
    sys_block = tmp_path / "sys"
    fake_loop(sys_block, 1, backing="/one.img")
    fake_loop(sys_block, 2, backing="/going.img")
    real_read = _sysfs._read

    def detaching(path: Path) -> str:
        if path.parent.parent.name == "loop2":
            raise OSError(errno.ENODEV, "No such device")
        return real_read(path)

    monkeypatch.setattr(_sysfs, "_read", detaching)
    assert [device.path for device in list_loop_devices(sys_block=sys_block)] == ["/dev/loop1"]
