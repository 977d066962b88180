"""Contents our own detectors do not know (minix, cramfs, ceph_bluestore, noise), and the ext4 with a stale
LUKS2 secondary header in it, written into a byte range of an image file with the real tools."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING, Final

from tests._tools import require_tool

if TYPE_CHECKING:
    from pathlib import Path

MIB: Final = 1 << 20
PASS: Final = b"stale secret"
#: cryptsetup's layout for the stale header: 4 MiB metadata per copy, so the secondary sits at 4 MiB.
SECONDARY_AT: Final = 4 * MIB
#: The magic libblkid's ceph_bluestore probe looks for at offset 0.
BLUESTORE_MAGIC: Final = b"bluestore block device\n"
KINDS: Final = ("minix", "cramfs", "ceph_bluestore", "noise")


def _run(*argv: object) -> None:
    result = subprocess.run([str(a) for a in argv], capture_output=True, check=False, timeout=120)
    if result.returncode != 0:
        raise AssertionError(
            f"{argv[0]} exited {result.returncode}: {result.stderr.decode(errors='replace')}"
        )


def _splice(source: Path, target: Path, at: int, *, skip: int = 0, length: int | None = None) -> None:
    with source.open("rb") as src, target.open("r+b") as dst:
        src.seek(skip)
        data = src.read() if length is None else src.read(length)
        dst.seek(at)
        dst.write(data)


def write_unknown(kind: str, target: Path, offset: int, size: int, scratch: Path) -> None:
    """Put ``kind`` (one of ``KINDS``) at ``offset`` of ``target``, made in at most ``size`` bytes."""
    made = scratch / f"{kind}.img"
    if kind == "minix":
        with made.open("wb") as f:
            f.truncate(min(size, 64 * MIB))
        _run(require_tool("mkfs.minix"), made)
    elif kind == "cramfs":
        tree = scratch / "cramfs-tree"
        tree.mkdir(exist_ok=True)
        (tree / "file").write_bytes(b"read-only data\n")
        _run(require_tool("mkfs.cramfs"), tree, made)
    elif kind == "ceph_bluestore":
        made.write_bytes(BLUESTORE_MAGIC + os.urandom(4096))
    elif kind == "noise":
        made.write_bytes(os.urandom(2 * MIB))  # no signature anyone knows, yet not blank
    else:
        raise ValueError(kind)
    _splice(made, target, offset)


def write_ext4_with_stale_secondary(target: Path, offset: int, scratch: Path) -> bytes:
    """A 64 MiB ext4 holding a file, then MiB 4..8 of a cryptsetup LUKS2 volume copied over it (the issue's
    repro).

    ``wipefs`` lists both signatures afterwards. Returns the file's content (to read back after)."""
    fs = scratch / "ext4.img"
    with fs.open("wb") as f:
        f.truncate(64 * MIB)
    # without flex_bg the metadata sits below 4 MiB: the stale header lands in free blocks and e2fsck
    # still finds the filesystem clean, so any later change to it is ours
    _run(require_tool("mkfs.ext4"), "-q", "-F", "-O", "^flex_bg", fs)
    payload = os.urandom(64).hex().encode() + b"\n"
    source = scratch / "payload"
    source.write_bytes(payload)
    _run(require_tool("debugfs"), "-w", "-R", f"write {source} f", fs)
    luks = scratch / "stale-luks.img"
    with luks.open("wb") as f:
        f.truncate(32 * MIB)
    keyfile = scratch / "stale-key"
    keyfile.write_bytes(PASS)
    _run(
        require_tool("cryptsetup"), "luksFormat", "--batch-mode", "--type", "luks2",
        "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
        "--luks2-metadata-size", "4096k", "--luks2-keyslots-size", "16m", "--key-file", keyfile, luks,
    )  # fmt: skip
    _splice(luks, fs, SECONDARY_AT, skip=SECONDARY_AT, length=4 * MIB)
    _splice(fs, target, offset)
    return payload


def ext4_file(image: Path, scratch: Path) -> bytes:
    """The file the ext4 of `write_ext4_with_stale_secondary` holds, read back with debugfs (read-only)."""
    out = scratch / "read-back"
    out.unlink(missing_ok=True)
    _run(require_tool("debugfs"), "-R", f"dump f {out}", image)
    return out.read_bytes()


def ext4_is_clean(image: Path) -> bool:
    """e2fsck -fn (read-only) finds no fault in the ext4 of `write_ext4_with_stale_secondary`."""
    result = subprocess.run(
        [require_tool("e2fsck"), "-fn", str(image)], capture_output=True, check=False, timeout=120
    )
    return result.returncode == 0
