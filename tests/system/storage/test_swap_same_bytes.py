"""swapon/swapoff by the bytes a device names, not its node: two loop devices over one region of an image are
one swap area (review22 F2: a run killed and started again without a reboot attached a second loop device
over its swap partition and turned swap on twice on the same bytes)."""

from __future__ import annotations

import contextlib
import subprocess
from typing import TYPE_CHECKING

from tests._tools import require_tool
from volumed.storage import loop
from volumed.storage.filesystem import active_swap, read_swaps, swap_active, swap_off, swap_on

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MIB = 1 << 20


@contextlib.contextmanager
def two_loops_over_one_region(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """Two read-write loop devices over MiB 1..17 of an image with a swap signature there, and a third over
    MiB 17..33; swap is off on all three when the block ends."""
    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(34 * MIB)
    devices = [loop.attach(image, offset=offset, size_limit=16 * MIB) for offset in (MIB, MIB, 17 * MIB)]
    try:
        subprocess.run([require_tool("mkswap"), devices[0].path], check=True, capture_output=True)
        yield devices[0].path, devices[1].path, devices[2].path
    finally:
        for device in devices:
            if device.path in [entry.device for entry in read_swaps()]:
                subprocess.run([require_tool("swapoff"), device.path], check=False, capture_output=True)
            loop.detach(device)


def test_swap_on_through_a_second_loop_over_the_same_bytes_adopts_the_area(tmp_path: Path) -> None:
    with two_loops_over_one_region(tmp_path) as (first, second, elsewhere):
        assert swap_on(first)
        assert swap_active(second)
        assert active_swap(second) == first
        assert not swap_active(elsewhere)
        assert not swap_on(second)  # no second area over the same bytes
        assert [entry.device for entry in read_swaps() if entry.device in (first, second)] == [first]
        assert swap_off(second)  # turns off the area listed under the first device
        assert not swap_active(first)
        assert not swap_off(second)
