"""Discovery of disk images: the disk and each GPT partition as a region of the file, probed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.controllers.block._discovery import discover, image_disk_id
from volumed.storage import disklayout
from volumed.storage.luks2 import KdfSettings, Luks2Volume

if TYPE_CHECKING:
    from pathlib import Path

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
