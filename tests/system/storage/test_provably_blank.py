"""`examine_region`: blank only when provably blank, on image regions and on loop devices (issue 15, item 4);
a lone LUKS2 secondary header beside another signature is ambiguous, and not LUKS for discovery (item 1).

Before the fix there was no libblkid opinion and no zero check: these contents probed as empty (None), and the
ext4 with a stale secondary header probed as LUKS.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

import pytest

from tests.storage.luks2._luks2_helpers import cryptsetup, key_file
from tests.storage.probe._contents import KINDS, MIB, PASS, write_ext4_with_stale_secondary, write_unknown
from tests.system.storage._loops import loop_device
from volumed.storage.blockdev import Region
from volumed.storage.gpt import new_table, write_partition_table
from volumed.storage.probe import ContentKind, SignatureType, examine_region, probe_region

if TYPE_CHECKING:
    from pathlib import Path

OFFSET = 8 * MIB  # a partition inside a disk image: libblkid must probe that range, not the image
SIZE = 96 * MIB
NAMES = {"minix": "minix", "cramfs": "cramfs", "ceph_bluestore": "ceph_bluestore"}


def _image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.img"
    with path.open("wb") as f:
        f.truncate(OFFSET + SIZE + MIB)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", KINDS)
def test_content_only_libblkid_knows_is_not_blank(tmp_path: Path, kind: str) -> None:
    image = _image(tmp_path)
    write_unknown(kind, image, OFFSET, SIZE, tmp_path)
    before = _digest(image)
    region = Region(str(image), OFFSET, SIZE)
    content = examine_region(region)
    if kind == "noise":
        assert content.kind is ContentKind.UNKNOWN
        assert content.describe().startswith("unknown data")
    else:
        assert content.kind is ContentKind.OTHER
        assert content.describe() == NAMES[kind]
    with loop_device(image, offset=OFFSET, size=SIZE) as device:
        assert examine_region(Region.whole(device)).kind is content.kind
    assert _digest(image) == before


def test_zeros_are_blank_and_only_the_sample_points_count(tmp_path: Path) -> None:
    image = _image(tmp_path)
    region = Region(str(image), OFFSET, SIZE)
    assert examine_region(region).kind is ContentKind.BLANK
    with image.open("r+b") as f:  # between the samples at 2 MiB (64 KiB) and 4 MiB: not seen
        f.seek(OFFSET + 2 * MIB + 64 * 1024)
        f.write(os.urandom(MIB))
    assert examine_region(region).kind is ContentKind.BLANK
    with image.open("r+b") as f:  # the sample at 2 MiB: seen (item 2 of the review: was blank)
        f.seek(OFFSET + 2 * MIB + 65535)
        f.write(b"\x01")
    assert examine_region(region).kind is ContentKind.UNKNOWN
    with image.open("r+b") as f:
        f.seek(OFFSET + 2 * MIB + 65535)
        f.write(b"\x00")
    with image.open("r+b") as f:
        f.seek(OFFSET + MIB - 1)
        f.write(b"\x01")
    assert examine_region(region).kind is ContentKind.UNKNOWN
    assert (
        examine_region(region, zero_check=False).kind is ContentKind.BLANK
    )  # a decrypted view: noise is fine


def test_ext4_with_a_stale_secondary_header_is_ambiguous_and_probes_as_ext4(tmp_path: Path) -> None:
    image = _image(tmp_path)
    write_ext4_with_stale_secondary(image, OFFSET, tmp_path)
    region = Region(str(image), OFFSET, SIZE)
    content = examine_region(region)
    assert content.kind is ContentKind.AMBIGUOUS
    assert content.describe() == (
        f"ambiguous signatures on {image} at byte {OFFSET} (a stale LUKS2 secondary header at offset 0x400000"
        " and ext4)"
    )
    found = probe_region(region)  # what discovery reports: not LUKS
    assert found is not None
    assert found.type is SignatureType.EXT4


def test_ext4_with_a_stale_secondary_header_is_not_luks_for_discovery(tmp_path: Path) -> None:
    from volumed.controllers.block._discovery import Discovery, scan_image

    image = _image(tmp_path)
    table = new_table(OFFSET + SIZE + MIB)
    table, partition = table.add_partition(size=SIZE, name="EPHEMERAL")
    write_partition_table(image, table)
    at = partition.offset(table.sector_size)
    write_ext4_with_stale_secondary(image, at, tmp_path)
    result = Discovery()
    scan_image(str(image), result)
    found = [v for v in result.volumes.values() if v.partition_label == "EPHEMERAL"]
    assert [v.name for v in found] == ["ext4"]


def test_a_damaged_luks2_header_alone_is_still_luks(tmp_path: Path) -> None:
    """A zeroed primary with a valid secondary and nothing else: LUKS (opened; repaired by a write)."""
    image = tmp_path / "luks.img"
    with image.open("wb") as f:
        f.truncate(32 * MIB)
    cryptsetup(
        "luksFormat", "--batch-mode", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
        "--key-file", key_file(tmp_path, PASS), image,
    )  # fmt: skip
    with image.open("r+b") as f:
        f.write(bytes(4096))
    assert examine_region(Region.whole(image)).kind is ContentKind.LUKS
