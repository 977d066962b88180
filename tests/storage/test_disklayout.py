"""The Talos layout: image creation and wiping system partitions on image files."""

from __future__ import annotations

import contextlib
import resource
import stat
from typing import TYPE_CHECKING

import pytest

from volumed.storage import disklayout
from volumed.storage.gpt import LINUX_FILESYSTEM_DATA, NoPartitionTableError, read_partition_table
from volumed.storage.probe import SignatureType, probe_path

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MIB = 1024 * 1024


def test_talos_layout_sizes_and_types() -> None:
    table = disklayout.talos_table(1024 * MIB)
    parts = [(p.number, p.name, p.offset(512), p.size(512), p.type_guid) for p in table.partitions]
    assert parts == [
        (1, "META", MIB, MIB, LINUX_FILESYSTEM_DATA),
        (2, "STATE", 2 * MIB, 100 * MIB, LINUX_FILESYSTEM_DATA),
        (3, "EPHEMERAL", 102 * MIB, 921 * MIB, LINUX_FILESYSTEM_DATA),
    ]


def test_create_is_sparse_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    table = disklayout.create_disk_image(path, 512 * MIB, state_size=32 * MIB)
    assert read_partition_table(path) == table
    assert path.stat().st_size == 512 * MIB
    assert path.stat().st_blocks * 512 <= 256 * 1024
    with pytest.raises(disklayout.DiskImageExistsError, match="is not empty; pass --force"):
        disklayout.create_disk_image(path, 512 * MIB)
    again = disklayout.create_disk_image(path, 256 * MIB, force=True)
    assert path.stat().st_size == 256 * MIB
    assert read_partition_table(path) == again
    with pytest.raises(disklayout.DiskImageExistsError, match="not a regular file"):
        disklayout.create_disk_image(tmp_path, 256 * MIB, force=True)


def test_create_errors(tmp_path: Path) -> None:
    with pytest.raises(disklayout.DiskLayoutError, match=r"too small: .* needs at least 109051904 bytes"):
        disklayout.create_disk_image(tmp_path / "a.img", 64 * MIB)
    with pytest.raises(disklayout.DiskLayoutError, match="not a multiple of the 512-byte sector size"):
        disklayout.create_disk_image(tmp_path / "a.img", 200 * MIB + 1)
    assert not (tmp_path / "a.img").exists()


@contextlib.contextmanager
def _file_size_limit(limit: int) -> Iterator[None]:
    """Files may grow to ``limit`` bytes: growing one further fails with EFBIG (Python ignores SIGXFSZ)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_create_failure_leaves_the_old_image_and_no_new_file(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    disklayout.create_disk_image(path, 256 * MIB, state_size=16 * MIB)
    path.chmod(0o640)
    before = path.read_bytes()
    with _file_size_limit(512 * MIB), pytest.raises(disklayout.DiskLayoutError) as failed:
        disklayout.create_disk_image(path, 1024 * MIB, force=True)
    assert str(failed.value) == f"cannot make {path} {1024 * MIB} bytes long: File too large"
    assert path.read_bytes() == before
    with _file_size_limit(512 * MIB), pytest.raises(disklayout.DiskLayoutError, match=r"new\.img"):
        disklayout.create_disk_image(tmp_path / "new.img", 1024 * MIB)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.img"]
    disklayout.create_disk_image(path, 128 * MIB, state_size=16 * MIB, force=True)
    assert path.stat().st_size == 128 * MIB
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_create_through_a_symlink_replaces_the_file_it_names(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    disklayout.create_disk_image(path, 256 * MIB, state_size=16 * MIB)
    link = tmp_path / "link.img"
    link.symlink_to(path.name)
    disklayout.create_disk_image(link, 128 * MIB, state_size=16 * MIB, force=True)
    assert link.is_symlink()
    assert path.stat().st_size == 128 * MIB


def _put_ext4_magic(path: Path, offset: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset + 1024 + 56)
        f.write(b"\x53\xef")


def test_wipe_only_the_named_partitions(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    table = disklayout.create_disk_image(path, 256 * MIB, state_size=16 * MIB)
    for p in table.partitions:
        _put_ext4_magic(path, p.offset(512))
    wiped = disklayout.wipe_system_partitions(path, ["STATE", "EPHEMERAL"])
    assert [(w.label, w.number, [s.type for s in w.signatures]) for w in wiped] == [
        ("STATE", 2, [SignatureType.EXT2]),
        ("EPHEMERAL", 3, [SignatureType.EXT2]),
    ]
    assert read_partition_table(path) == table
    from volumed.storage.blockdev import Region
    from volumed.storage.probe import probe_region

    regions = {p.name: Region(str(path), p.offset(512), p.size(512)) for p in table.partitions}
    sig = probe_region(regions["META"])
    assert sig is not None
    assert sig.type is SignatureType.EXT2
    assert probe_region(regions["STATE"]) is None
    assert probe_region(regions["EPHEMERAL"]) is None


def test_wipe_errors_change_nothing(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    table = disklayout.create_disk_image(path, 256 * MIB, state_size=16 * MIB)
    state = table.find("STATE")
    assert state is not None
    _put_ext4_magic(path, state.offset(512))
    before = path.read_bytes()
    with pytest.raises(
        disklayout.UnknownLabelError, match=r"no partition labelled BOOT, EFI .*META, STATE, EPHEMERAL"
    ):
        disklayout.wipe_system_partitions(path, ["STATE", "BOOT", "EFI"])
    with pytest.raises(disklayout.DiskLayoutError, match="no partition labels"):
        disklayout.wipe_system_partitions(path, [])
    assert path.read_bytes() == before
    plain = tmp_path / "plain.img"
    plain.write_bytes(bytes(MIB))
    with pytest.raises(NoPartitionTableError):
        disklayout.wipe_system_partitions(plain, ["STATE"])
    assert probe_path(plain) is None


def test_discover_volumes_of_an_image(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    table = disklayout.create_disk_image(path, 256 * MIB, state_size=16 * MIB)
    state = table.find("STATE")
    assert state is not None
    _put_ext4_magic(path, state.offset(512))
    volumes = disklayout.discover_volumes(path)
    assert [(v.partition_number, v.partition_label, v.size) for v in volumes] == [
        (None, None, 256 * MIB),
        (1, "META", MIB),
        (2, "STATE", 16 * MIB),
        (3, "EPHEMERAL", 237 * MIB),
    ]
    kinds = [v.signature.type if v.signature else None for v in volumes]
    assert kinds == [SignatureType.GPT, None, SignatureType.EXT2, None]
    assert volumes[2].partition_uuid == state.unique_guid
    assert volumes[2].partition_type == LINUX_FILESYSTEM_DATA
    assert volumes[2].region.offset == 2 * MIB


def test_discover_volumes_without_a_partition_table(tmp_path: Path) -> None:
    path = tmp_path / "raw.img"
    path.write_bytes(bytes(MIB))
    (only,) = disklayout.discover_volumes(path)
    assert (only.partition_number, only.signature, only.size) == (None, None, MIB)
