"""The sizes a probe reads from a superblock (Talos' ``volume.block_size``, ``filesystem_block_size``,
``probed_size``), on filesystems made by the real mkfs tools.

The expected values come from the tools' own readers, never from our parser: ``blkid -p`` (BLOCK_SIZE),
``dumpe2fs -h``, ``xfs_db``, ``fsck.fat -v``, ``mkswap``'s report, ``btrfs inspect-internal dump-super`` and
``sfdisk --dump``; Talos' formulas (go-blockdevice v2 ``blkid/internal/filesystems``) are applied to them
here. The parsing is pure: it reads the image through a plain ``read(offset, length)``.
"""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING, Final

import pytest

from tests._tools import require_tool
from volumed.storage.probe import Signature, SignatureType, probe

if TYPE_CHECKING:
    from pathlib import Path

MIB: Final = 1 << 20


def _run(*argv: str) -> str:
    done = subprocess.run(
        [require_tool(argv[0]), *argv[1:]], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, f"{argv[0]} exited {done.returncode}: {done.stderr}"
    return done.stdout + done.stderr


def _image(tmp_path: Path, size: int) -> Path:
    image = tmp_path / "fs.img"
    with image.open("wb") as file:
        file.truncate(size)
    return image


def _probe(image: Path) -> Signature:
    data = image.read_bytes()
    signature = probe(lambda offset, length: data[offset : offset + length], len(data))
    assert signature is not None
    return signature


def _sizes(signature: Signature) -> tuple[int, int, int]:
    return signature.block_size, signature.filesystem_block_size, signature.probed_size


def _blkid_block_size(image: Path) -> int:
    fields = dict(line.split("=", 1) for line in _run("blkid", "-p", "-o", "export", str(image)).splitlines())
    return int(fields["BLOCK_SIZE"])


def _number(pattern: str, text: str) -> int:
    found = re.search(pattern, text, re.MULTILINE)
    assert found is not None, f"{pattern!r} not in:\n{text}"
    return int(found.group(1))


@pytest.mark.parametrize(
    ("kind", "args"),
    [
        ("ext4", ["-b", "4096"]),
        ("ext4", ["-b", "1024"]),
        ("ext4", ["-b", "4096", "-O", "64bit"]),
        ("ext2", ["-b", "2048"]),
        ("ext3", ["-b", "4096"]),
    ],
)
def test_ext(tmp_path: Path, kind: str, args: list[str]) -> None:
    image = _image(tmp_path, 40 * MIB)
    _run("mkfs.ext4", "-q", "-F", "-t", kind, *args, str(image))
    dump = _run("dumpe2fs", "-h", str(image))
    block = _number(r"^Block size:\s+(\d+)", dump)
    count = _number(r"^Block count:\s+(\d+)", dump)
    signature = _probe(image)
    assert signature.type.value == kind
    assert _sizes(signature) == (block, block, count * block)
    assert signature.block_size == _blkid_block_size(image)


@pytest.mark.parametrize(
    "args",
    [
        [],  # internal log: not counted
        ["-b", "size=1024"],
        ["-b", "size=4096", "-s", "size=4096"],
    ],
)
def test_xfs(tmp_path: Path, args: list[str]) -> None:
    image = _image(tmp_path, 320 * MIB)
    _run("mkfs.xfs", "-q", "-f", *args, str(image))
    sb = _run(
        "xfs_db", "-r", "-c", "sb 0", "-c", "p blocksize dblocks logstart logblocks sectsize", str(image)
    )
    block = _number(r"^blocksize = (\d+)", sb)
    dblocks = _number(r"^dblocks = (\d+)", sb)
    logblocks = _number(r"^logblocks = (\d+)", sb)
    assert _number(r"^logstart = (\d+)", sb) != 0  # an internal log
    sector = _number(r"^sectsize = (\d+)", sb)
    signature = _probe(image)
    assert signature.type is SignatureType.XFS
    assert _sizes(signature) == (sector, block, (dblocks - logblocks) * block)
    assert signature.block_size == _blkid_block_size(image)


def test_xfs_external_log_counts_every_data_block(tmp_path: Path) -> None:
    image = _image(tmp_path, 320 * MIB)
    log = tmp_path / "log.img"
    with log.open("wb") as file:
        file.truncate(80 * MIB)
    _run("mkfs.xfs", "-q", "-f", "-l", f"logdev={log}", str(image))
    sb = _run("xfs_db", "-r", "-c", "sb 0", "-c", "p blocksize dblocks logstart", str(image))
    assert _number(r"^logstart = (\d+)", sb) == 0
    block, dblocks = _number(r"^blocksize = (\d+)", sb), _number(r"^dblocks = (\d+)", sb)
    assert _probe(image).probed_size == dblocks * block


@pytest.mark.parametrize(
    ("size", "args"),
    [
        (40 * MIB, ["-F", "32"]),
        (40 * MIB, ["-F", "16", "-s", "4"]),
        (40 * MIB, ["-F", "32", "-S", "4096", "-s", "2"]),
        (8 * MIB, ["-F", "12", "-s", "8"]),  # 16384 sectors: the 16-bit sector count
    ],
)
def test_vfat(tmp_path: Path, size: int, args: list[str]) -> None:
    image = _image(tmp_path, size)
    _run("mkfs.vfat", *args, str(image))
    report = _run("fsck.fat", "-n", "-v", str(image))
    sector = _number(r"^\s*(\d+) bytes per logical sector", report)
    cluster = _number(r"^\s*(\d+) bytes per cluster", report)
    sectors = _number(r"^\s*(\d+) sectors total", report)
    signature = _probe(image)
    assert signature.type is SignatureType.VFAT
    assert _sizes(signature) == (sector, cluster, sectors * sector)
    assert signature.block_size == _blkid_block_size(image)


@pytest.mark.parametrize("page", [4096, 16384, 65536])
def test_swap(tmp_path: Path, page: int) -> None:
    image = _image(tmp_path, 40 * MIB)
    report = _run("mkswap", "-p", str(page), str(image))
    # mkswap reports the pages after the header page up to the last one: Talos' probed size
    size = _number(r"size = .*\((\d+) bytes\)", report)
    signature = _probe(image)
    assert signature.type is SignatureType.SWAP
    assert _sizes(signature) == (page, page, size)


@pytest.mark.parametrize("args", [[], ["--sectorsize", "4096", "--nodesize", "65536"]])
def test_btrfs(tmp_path: Path, args: list[str]) -> None:
    image = _image(tmp_path, 128 * MIB)
    _run("mkfs.btrfs", "-q", "-f", *args, str(image))
    sb = _run("btrfs", "inspect-internal", "dump-super", str(image))
    signature = _probe(image)
    assert signature.type is SignatureType.BTRFS
    assert _sizes(signature) == (
        _number(r"^sectorsize\s+(\d+)", sb),
        _number(r"^nodesize\s+(\d+)", sb),
        _number(r"^total_bytes\s+(\d+)", sb),
    )


def test_gpt_disk(tmp_path: Path) -> None:
    image = _image(tmp_path, 64 * MIB)
    _run("sgdisk", "-o", str(image))
    dump = _run("sfdisk", "--dump", str(image))
    first, last = _number(r"^first-lba: (\d+)", dump), _number(r"^last-lba: (\d+)", dump)
    sector = _number(r"^sector-size: (\d+)", dump)
    signature = _probe(image)
    assert signature.type is SignatureType.GPT
    assert _sizes(signature) == (sector, 0, (last - first + 1) * sector)


def test_luks_has_no_sizes() -> None:
    """Talos' LUKS probe reports none (go-blockdevice ``luks.go``): the sizes stay 0."""
    head = bytearray(MIB)
    head[0:8] = b"LUKS\xba\xbe\x00\x02"
    signature = probe(lambda offset, length: bytes(head[offset : offset + length]), len(head))
    assert signature is not None
    assert _sizes(signature) == (0, 0, 0)


def test_insane_fields_are_not_reported() -> None:
    """A superblock whose sizes cannot be right (an xfs block size of 3000) is still xfs, with no sizes."""
    sb = bytearray(MIB)
    sb[0:4] = b"XFSB"
    sb[4:8] = (3000).to_bytes(4, "big")
    sb[8:16] = (1000).to_bytes(8, "big")
    sb[102:104] = (512).to_bytes(2, "big")
    signature = probe(lambda offset, length: bytes(sb[offset : offset + length]), len(sb))
    assert signature is not None
    assert signature.type is SignatureType.XFS
    assert _sizes(signature) == (0, 0, 0)
