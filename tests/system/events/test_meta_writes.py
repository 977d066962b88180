"""A META tag written by another process through the node MetaStore reads (a loop device, or the disk image
file itself) and closed: the MetaKey shows it at once, though the poll is ten minutes away (inotify
IN_CLOSE_WRITE on that node, as udev's "watch")."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from tests.system.storage._loops import loop_device
from volumed.controllers import DiscoveryController, MetaStore
from volumed.resources import SYSTEM, MetaKeyDefinition, meta_key_id
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_resource, run_runtime
from volumed.storage import disklayout
from volumed.storage.meta import MetaPartition

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024
NEVER = 600.0  # MetaStore's polls here: a value seen within seconds was not found by polling
SOON = 5.0
TAG = 0x0C  # USER_RESERVED_1: nothing in volumed acts on it
KEY = Pointer(SYSTEM, MetaKeyDefinition.type, meta_key_id(TAG))

WRITER = """
import sys
from volumed.storage.meta import MetaPartition
MetaPartition(sys.argv[1], offset=int(sys.argv[2])).set(int(sys.argv[3]), sys.argv[4].encode())
"""


def write_tag(device: str, offset: int, value: str) -> None:
    """Another process writes the tag with volumed's own META writer: open, write, fsync, close."""
    argv = [sys.executable, "-c", WRITER, device, str(offset), str(TAG), value]
    subprocess.run(argv, check=True, capture_output=True)


def node_image(tmp_path: Path) -> tuple[Path, int]:
    """A small disk image with the Talos layout; its META area's offset."""
    image = tmp_path / "node.img"
    table = disklayout.create_disk_image(image, 128 * MIB, state_size=32 * MIB)
    meta = table.find("META")
    assert meta is not None
    offset = meta.offset(table.sector_size)
    MetaPartition(image, offset=offset).set(TAG, b"before")
    return image, offset


async def seen_after_write(disk: str, offset: int) -> float:
    """Run discovery of ``disk`` and MetaStore (both polling every NEVER s), write the tag from another
    process once its first value is published; the seconds from the writer's exit to the new value."""
    controllers = (
        DiscoveryController([disk], interval=NEVER),
        MetaStore(poll_interval=NEVER, watched_poll_interval=NEVER),
    )
    async with run_runtime(*controllers) as runtime:
        await assert_resource(runtime.state, KEY, lambda r: r.spec.value.get_secret_value() == "before")
        write_tag(disk, offset, "after")
        written = time.monotonic()
        await assert_resource(
            runtime.state, KEY, lambda r: r.spec.value.get_secret_value() == "after", within=SOON
        )
        return time.monotonic() - written


@pytest.mark.parametrize("through", ["loop device", "image file"])
async def test_a_meta_write_by_another_process_is_published_without_waiting_for_the_poll(
    tmp_path: Path, through: str
) -> None:
    image, offset = node_image(tmp_path)
    if through == "image file":
        seconds = await seen_after_write(str(image), offset)
    else:
        with loop_device(image) as device:  # the whole disk: META at its offset, as `--disk /dev/loopN`
            seconds = await seen_after_write(device, offset)
    print(f"META write through the {through} -> MetaKey: {seconds * 1000:.1f} ms")
