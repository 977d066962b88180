"""Loop devices for real (root): attach with offset/size, read-only, autoclear, find attachments, detach."""

from __future__ import annotations

import contextlib
import errno
import os
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_root
from volumed.storage import loop

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MiB = 1 << 20


@pytest.fixture
def image(tmp_path: Path) -> Iterator[Path]:
    require_root()
    path = tmp_path / "disk.img"
    with path.open("wb") as handle:
        handle.truncate(8 * MiB)
        handle.seek(MiB)
        handle.write(b"payload at one MiB")
    yield path
    for device in loop.find_attachments(path):
        with contextlib.suppress(loop.LoopError):
            loop.detach(device)


def test_attach_with_offset_and_size_then_detach(image: Path) -> None:
    device = loop.attach(image, offset=MiB, size_limit=4 * MiB)
    try:
        assert device.path.startswith("/dev/loop")
        assert (device.offset, device.size_limit, device.size) == (MiB, 4 * MiB, 4 * MiB)
        assert not device.read_only
        assert not device.autoclear
        with open(device.path, "rb") as block:
            assert block.read(18) == b"payload at one MiB"
        assert loop.find_attachments(image) == [device]
        assert loop.find_attachments(image, offset=0) == []
        assert loop.read_loop_device(device.path) == device
    finally:
        loop.detach(device)
    assert loop.find_attachments(image) == []
    assert loop.read_loop_device(device.path) is None


def test_read_only_refuses_writes(image: Path) -> None:
    device = loop.attach(image, read_only=True)
    try:
        assert device.read_only
        descriptor = os.open(device.path, os.O_WRONLY)
        try:
            with pytest.raises(OSError, match=r"Operation not permitted|Read-only|Permission denied"):
                os.write(descriptor, b"x" * 512)
        finally:
            os.close(descriptor)
        assert image.read_bytes()[:512] == bytes(512)
    finally:
        loop.detach(device)


def test_autoclear_goes_away_after_the_last_close(image: Path) -> None:
    with loop.attached(image, autoclear=True) as device:
        assert device.autoclear
        assert loop.find_attachments(image) == [device]
    assert loop.find_attachments(image) == []


def test_attached_without_autoclear_detaches_on_exit(image: Path) -> None:
    with loop.attached(image, autoclear=False, block_size=4096) as device:
        assert not device.autoclear
    assert loop.read_loop_device(device.path) is None


def test_errors_name_the_problem(tmp_path: Path) -> None:
    require_root()
    with pytest.raises(loop.LoopError, match="cannot open") as info:
        loop.attach(tmp_path / "missing.img")
    assert info.value.errno == errno.ENOENT
    # a loop device nobody has attached (a fixed one might be another program's, and would be detached)
    paths = (f"/dev/loop{n}" for n in range(250, 10**6))
    unattached = next(path for path in paths if loop.read_loop_device(path) is None)
    with pytest.raises(loop.LoopError, match="not an attached loop device"):
        loop.detach(unattached)
    with pytest.raises(loop.LoopError, match="is not a loop device"):
        loop.read_loop_device("/dev/sda")
