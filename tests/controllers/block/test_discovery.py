"""Discovery of disk images: the disk and each GPT partition as a region of the file, probed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest
import structlog

from volumed.controllers import DiscoveryController
from volumed.controllers.block._discovery import discover, image_disk_id
from volumed.resources import BLOCK, DiskDefinition
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_resource, run_runtime
from volumed.storage import disklayout
from volumed.storage.luks2 import KdfSettings, Luks2Volume

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.runtime.controller import ControllerContext

MIB = 1024 * 1024


def test_image_partitions_become_volumes(tmp_path: Path) -> None:
    image = tmp_path / "node.img"
    table = disklayout.create_disk_image(str(image), 256 * MIB, state_size=64 * MIB)
    state = table.find("STATE")
    assert state is not None
    Luks2Volume.format(
        image,
        b"pass",
        offset=state.offset(table.sector_size),
        size=state.size(table.sector_size),
        kdf=KdfSettings(type="pbkdf2", iterations=1000),
    ).close()

    found = discover([str(image)])
    disk_id = image_disk_id(str(image))
    assert disk_id == "node-img"
    assert found.disks[disk_id].image
    assert found.disks[disk_id].size == 256 * MIB
    by_label = {v.partition_label: v for v in found.volumes.values()}
    assert set(by_label) == {"META", "STATE", "EPHEMERAL"}
    assert by_label["STATE"].name == "luks"
    assert by_label["STATE"].offset == state.offset(table.sector_size)
    assert by_label["STATE"].dev_path == str(image)
    assert by_label["EPHEMERAL"].name == ""
    assert found.volumes[f"{disk_id}p2"].partition_label == "STATE"


def test_image_without_table_is_one_volume(tmp_path: Path) -> None:
    image = tmp_path / "raw.img"
    image.write_bytes(b"\0" * MIB)
    found = discover([str(image)])
    assert list(found.volumes) == ["raw-img"]
    assert found.volumes["raw-img"].size == MIB


def _good_image(tmp_path: Path) -> Path:
    image = tmp_path / "good.img"
    disklayout.create_disk_image(str(image), 256 * MIB, state_size=64 * MIB)
    return image


@pytest.mark.parametrize("size", [0, 1536])
def test_a_tiny_image_hides_no_other_disk(tmp_path: Path, size: int) -> None:
    good = _good_image(tmp_path)
    tiny = tmp_path / "tiny.img"
    tiny.write_bytes(bytes(size))

    found = discover([str(good), str(tiny)])
    good_id = image_disk_id(str(good))
    assert good_id in found.disks
    labels = {v.partition_label for v in found.volumes.values() if v.dev_path == str(good)}
    assert labels == {"META", "STATE", "EPHEMERAL"}
    # The tiny image is either a disk without a signature or skipped as unreadable; never an error.
    tiny_id = image_disk_id(str(tiny))
    if tiny_id in found.disks:
        assert found.volumes[tiny_id].name == ""
    else:
        assert str(tiny) in found.unreadable


def test_an_unreadable_image_is_skipped_and_named(tmp_path: Path) -> None:
    good = _good_image(tmp_path)
    gone = tmp_path / "gone.img"  # removed while volumed runs

    found = discover([str(gone), str(good)])
    assert list(found.disks) == [image_disk_id(str(good))]
    assert len(found.volumes) == 3
    assert list(found.unreadable) == [str(gone)]
    assert str(gone) in found.unreadable[str(gone)]
    assert "\n" not in found.unreadable[str(gone)]


class CountingDiscovery(DiscoveryController):
    """Sets ``rescanned`` after a few scans."""

    def __init__(self, images: list[str], scans: int) -> None:
        super().__init__(images, interval=0.01)
        self.scans_left = scans
        self.rescanned = anyio.Event()

    async def reconcile(self, ctx: ControllerContext) -> None:
        await super().reconcile(ctx)
        self.scans_left -= 1
        if self.scans_left <= 0:
            self.rescanned.set()


async def test_an_unreadable_image_is_logged_once_until_it_reads_again(tmp_path: Path) -> None:
    good = _good_image(tmp_path)
    late = tmp_path / "late.img"
    controller = CountingDiscovery([str(late), str(good)], scans=5)
    with structlog.testing.capture_logs() as logs:
        async with run_runtime(controller) as rt:
            with anyio.fail_after(10):
                await controller.rescanned.wait()
            await assert_resource(rt.state, Pointer(BLOCK, DiskDefinition.type, image_disk_id(str(good))))
            late.write_bytes(bytes(MIB))
            await assert_resource(rt.state, Pointer(BLOCK, DiskDefinition.type, image_disk_id(str(late))))
    skipped = [e for e in logs if e["event"] == "disk skipped: cannot be read"]
    assert [e["disk"] for e in skipped] == [str(late)]
    assert [e["disk"] for e in logs if e["event"] == "disk readable again"] == [str(late)]
    assert not [e for e in logs if e["event"] == "reconcile failed"]
