"""Probing agrees with blkid on images made by the real tools; wiping leaves blkid nothing to find."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_tool
from volumed.storage.blockdev import Region
from volumed.storage.filesystem import make_filesystem
from volumed.storage.probe import SignatureType, is_zeroed, probe_all, probe_path, wipe_region

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

MIB = 1024 * 1024


def sparse(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.truncate(size)
    return path


def blkid(path: Path) -> dict[str, str]:
    done = subprocess.run(
        [require_tool("blkid"), "-p", "-o", "export", str(path)], capture_output=True, text=True, check=False
    )
    if done.returncode == 2:  # nothing found
        return {}
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def _luks(version: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        argv = [require_tool("cryptsetup"), "luksFormat", "-q", f"--type=luks{version}", "--key-file=-"]
        argv += ["--pbkdf=pbkdf2", "--pbkdf-force-iterations=1000"]
        if version == "2":
            argv += ["--label=lab"]
        subprocess.run([*argv, str(path)], input=b"pw", check=True, capture_output=True)

    return make


def _tool(*argv: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        subprocess.run([require_tool(argv[0]), *argv[1:], str(path)], check=True, capture_output=True)

    return make


CASES: list[tuple[str, int, Callable[[Path], None], SignatureType, str | None]] = [
    ("xfs", 64, lambda p: make_filesystem(p, "xfs", label="xlabel"), SignatureType.XFS, "xlabel"),
    ("ext4", 16, lambda p: make_filesystem(p, "ext4", label="e4label"), SignatureType.EXT4, "e4label"),
    ("ext3", 16, _tool("mkfs.ext3", "-q", "-F", "-L", "e3"), SignatureType.EXT3, "e3"),
    ("ext2", 16, _tool("mkfs.ext2", "-q", "-F", "-L", "e2"), SignatureType.EXT2, "e2"),
    ("btrfs", 128, _tool("mkfs.btrfs", "-q", "-f", "-L", "bt"), SignatureType.BTRFS, "bt"),
    ("swap", 16, lambda p: make_filesystem(p, "swap", label="sw"), SignatureType.SWAP, "sw"),
    ("vfat", 16, _tool("mkfs.vfat", "-n", "VFAT1"), SignatureType.VFAT, "VFAT1"),
    ("fat32", 64, _tool("mkfs.vfat", "-F", "32", "-n", "BIG"), SignatureType.VFAT, "BIG"),
    ("luks1", 16, _luks("1"), SignatureType.LUKS, None),
    ("luks2", 32, _luks("2"), SignatureType.LUKS, "lab"),
    ("gpt", 16, _tool("sgdisk", "-o", "-n=1:0:0"), SignatureType.GPT, None),
    ("mbr", 16, lambda p: _sfdisk(p, "label: dos\n,4M,L\n"), SignatureType.MBR, None),
]


def _sfdisk(path: Path, script: str) -> None:
    subprocess.run([require_tool("sfdisk"), "-q", str(path)], input=script, text=True, check=True)


@pytest.mark.parametrize(("name", "size_mib", "make", "kind", "label"), CASES, ids=[c[0] for c in CASES])
def test_probe_matches_blkid_and_wipe_clears_it(
    tmp_path: Path,
    name: str,
    size_mib: int,
    make: Callable[[Path], None],
    kind: SignatureType,
    label: str | None,
) -> None:
    path = sparse(tmp_path / f"{name}.img", size_mib * MIB)
    make(path)
    sig = probe_path(path)
    assert sig is not None
    assert sig.type is kind
    assert sig.label == label
    seen = blkid(path)
    if sig.is_partition_table:
        assert seen["PTTYPE"] == sig.blkid_type
        assert seen.get("PTUUID") == sig.uuid
    else:
        assert seen["TYPE"] == sig.blkid_type
        assert seen.get("LABEL") == sig.label
        assert seen.get("UUID") == sig.uuid
    if kind is SignatureType.LUKS:
        assert sig.version == name[-1]

    region = Region.whole(path)
    erased = wipe_region(region)
    assert kind in {s.type for s in erased}
    assert blkid(path) == {}
    assert probe_path(path) is None
    with region.open() as handle:
        assert probe_all(handle.read, region.size) == []
        assert is_zeroed(handle.read)


def test_luks2_with_the_primary_header_gone_still_probes_as_luks(tmp_path: Path) -> None:
    path = sparse(tmp_path / "luks.img", 32 * MIB)
    _luks("2")(path)
    with path.open("r+b") as f:
        f.write(bytes(4096))
    sig = probe_path(path)
    assert sig is not None
    assert sig.type is SignatureType.LUKS
    assert sig.magics == ((0x4000, 6),)
    assert blkid(path)["TYPE"] == "crypto_LUKS"  # blkid agrees: the secondary header still counts


def test_region_inside_an_image(tmp_path: Path) -> None:
    path = sparse(tmp_path / "disk.img", 64 * MIB)
    subprocess.run(
        [require_tool("mkfs.ext4"), "-q", "-F", "-L", "inner", "-E", f"offset={8 * MIB}", str(path), "16M"],
        check=True,
        capture_output=True,
    )
    assert probe_path(path) is None
    region = Region(str(path), 8 * MIB, 16 * MIB)
    with region.open() as handle:
        found = probe_all(handle.read, region.size)
    assert [(s.type, s.label) for s in found] == [(SignatureType.EXT4, "inner")]
    wipe_region(region)
    with path.open("rb") as f:
        data = f.read()
    assert data[: 8 * MIB] == bytes(8 * MIB)
    assert data[24 * MIB :] == bytes(40 * MIB)
