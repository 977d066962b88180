"""Kernel uevent messages: parsed when the kernel sent them, ignored otherwise; which are block changes."""

from __future__ import annotations

import pytest

from volumed.controllers.sources import is_block_change, parse_uevent

LOOP_CHANGE = (
    b"change@/devices/virtual/block/loop0\0ACTION=change\0DEVPATH=/devices/virtual/block/loop0\0"
    b"SUBSYSTEM=block\0DISK_MEDIA_CHANGE=1\0MAJOR=7\0MINOR=0\0DEVNAME=loop0\0DEVTYPE=disk\0SEQNUM=4242\0"
)


def test_a_kernel_message_is_parsed() -> None:
    event = parse_uevent(LOOP_CHANGE)
    assert event is not None
    assert (event.action, event.devpath, event.subsystem, event.devname) == (
        "change",
        "/devices/virtual/block/loop0",
        "block",
        "loop0",
    )
    assert event.properties["SEQNUM"] == "4242"
    assert is_block_change(event)


@pytest.mark.parametrize(
    "data",
    [
        b"libudev\0\xfe\xed\xca\xfe" + b"\0" * 32,  # udevd's re-broadcast format: not the kernel's
        b"",
        b"no-at-sign\0ACTION=add\0",
        b"add@/devices/x\0ACTION=remove\0",  # the header and the fields disagree
    ],
)
def test_anything_else_is_ignored(data: bytes) -> None:
    assert parse_uevent(data) is None


@pytest.mark.parametrize(
    ("message", "block_change"),
    [
        (b"add@/devices/virtual/block/dm-0\0ACTION=add\0SUBSYSTEM=block\0DEVNAME=dm-0\0", True),
        (b"remove@/devices/pci/0/block/sda/sda1\0ACTION=remove\0SUBSYSTEM=block\0DEVNAME=sda1\0", True),
        (b"bind@/devices/pci/0\0ACTION=bind\0SUBSYSTEM=pci\0", False),
        (b"add@/devices/virtual/net/tap0\0ACTION=add\0SUBSYSTEM=net\0", False),
        (b"offline@/devices/virtual/block/loop1\0ACTION=offline\0SUBSYSTEM=block\0", False),
    ],
)
def test_block_changes_are_adds_changes_removes_and_moves_of_block_devices(
    message: bytes, block_change: bool
) -> None:
    event = parse_uevent(message)
    assert event is not None
    assert is_block_change(event) is block_change
