"""Probing a region for signatures, and the probe-driven wipe (what ``wipefs -a`` does, plus edges)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.storage.blockdev import Region

from ._detectors import DETECTORS, ReadAt
from ._signature import Signature, SignatureType

if TYPE_CHECKING:
    import os

MIB = 1024 * 1024


def _within(read: ReadAt, size: int) -> ReadAt:
    """``read`` kept inside the first ``size`` bytes: short (or empty) past the end, never out of bounds.

    Detectors read at fixed offsets (64 KiB for btrfs, 1 KiB for ext); a region smaller than that has no such
    signature, and a region handle refuses reads that start past its end.
    """

    def bounded(offset: int, length: int) -> bytes:
        if offset >= size:
            return b""
        return read(offset, min(length, size - offset))

    return bounded


def probe_all(read: ReadAt, size: int) -> list[Signature]:
    """Every signature found, most specific first (LUKS, filesystems, LVM, then partition tables).

    A protective MBR under a GPT, or the boot sector of a FAT filesystem, is not reported as an MBR.
    Regions too small for a format's fixed offsets simply lack that signature.
    """
    read = _within(read, size)
    found: list[Signature] = []
    for detect in DETECTORS:
        sig = detect(read, size)
        if sig is None:
            continue
        if sig.type is SignatureType.MBR and any(
            s.type in (SignatureType.GPT, SignatureType.VFAT) for s in found
        ):
            continue
        found.append(sig)
    return found


def is_secondary_only(signature: Signature) -> bool:
    """A LUKS signature found by its secondary header alone (no primary magic at offset 0)."""
    return signature.type is SignatureType.LUKS and all(offset != 0 for offset, _ in signature.magics)


def first_signature(found: list[Signature] | tuple[Signature, ...]) -> Signature | None:
    """The most specific of ``found``, except that a lone LUKS2 secondary header never hides another
    signature: ext4 with a stale secondary header in it is ext4 (cryptsetup calls it ambiguous), not LUKS."""
    if not found:
        return None
    if is_secondary_only(found[0]) and len(found) > 1:
        return found[1]
    return found[0]


def probe(read: ReadAt, size: int) -> Signature | None:
    """The signature a region carries, or ``None`` when our detectors find none (which does not prove it
    blank: ask `examine_region` before formatting)."""
    return first_signature(probe_all(read, size))


def probe_region(region: Region) -> Signature | None:
    """``probe`` over a region of a device or image file (blocking); a block device's cache is dropped first
    so that writes made through another device over the same bytes are seen."""
    with region.open() as handle:
        handle.drop_cache()
        return probe(handle.read, region.size)


def probe_path(path: str | os.PathLike[str]) -> Signature | None:
    """``probe`` over a whole device or image file (blocking)."""
    return probe_region(Region.whole(path))


def is_zeroed(read: ReadAt, length: int = MIB) -> bool:
    """Whether the first ``length`` bytes are all zero (a stricter test than "no signature").

    A region shorter than ``length`` is checked up to its end (a short read), never read past it.
    """
    step = 64 * 1024
    for offset in range(0, length, step):
        want = min(step, length - offset)
        chunk = read(offset, want)
        if chunk.count(0) != len(chunk):
            return False
        if len(chunk) < want:
            break  # the region ends here
    return True


#: Bytes checked (and zeroed by a wipe) at every power-of-two MiB offset: see `blank_sample_ranges`.
SAMPLE_SIZE = 64 * 1024


def blank_sample_ranges(size: int, *, edge: int = MIB) -> list[tuple[int, int]]:
    """The (offset, length) ranges that must be zero for a region of ``size`` bytes to count as blank.

    The first and last ``edge`` bytes, and ``SAMPLE_SIZE`` bytes at 1, 2, 4, 8, ... MiB up to the end: where
    formats keep the copies that survive a zeroed start (a GPT backup header at the end, btrfs mirror
    superblocks at 64 MiB and 256 GiB, ext2/3/4 backup superblocks at 8/32/128 MiB...), and a sparse probe
    of everything between. The same ranges are zeroed by `wipe_region`, so a partition volumed made or wiped
    passes the check. A sample cannot prove the rest empty: see the mkfs/discard note in `filesystem`.
    """
    ranges = [(0, min(edge, size))]
    at = MIB
    while at < size:
        ranges.append((at, min(SAMPLE_SIZE, size - at)))
        at *= 2
    tail = min(edge, size)
    ranges.append((size - tail, tail))
    merged: list[tuple[int, int]] = []
    for start, length in sorted(r for r in ranges if r[1] > 0):
        if merged and start <= merged[-1][0] + merged[-1][1]:
            last_start, last_length = merged[-1]
            merged[-1] = (last_start, max(last_length, start + length - last_start))
        else:
            merged.append((start, length))
    return merged


def first_nonzero(read: ReadAt, size: int) -> int | None:
    """The offset of the first non-zero byte in `blank_sample_ranges` of a region, or None (all zero)."""
    step = 64 * 1024
    for start, length in blank_sample_ranges(size):
        for offset in range(start, start + length, step):
            want = min(step, start + length - offset)
            chunk = read(offset, want)
            if chunk.count(0) != len(chunk):
                return offset + next(i for i, b in enumerate(chunk) if b)
            if len(chunk) < want:
                return None  # the region ends here
    return None


def wipe_region(region: Region, *, edge: int = MIB, exclusive: bool = True) -> list[Signature]:
    """Erase every signature of a region; return what was found (blocking).

    Zeroes the magic bytes of each signature found (backup copies too: GPT backup header, LUKS2
    secondary header, btrfs mirrors) and probes again until nothing is left, then the first and last
    ``edge`` bytes and the rest of `blank_sample_ranges`, so that the region is then provably blank.
    On a block device it opens with ``O_EXCL``, so a mounted or claimed device fails
    with EBUSY before anything is written.
    """
    erased: list[Signature] = []
    with region.open(writable=True, exclusive=exclusive) as handle:
        handle.drop_cache()  # a disk's node can hold pages older than writes made through a partition's
        for _ in range(8):
            found = probe_all(handle.read, region.size)
            if not found:
                break
            erased.extend(found)
            for sig in found:
                for offset, length in sig.magics:
                    handle.zero(offset, length)
        for offset, length in blank_sample_ranges(region.size, edge=edge):  # what the blank check reads
            handle.zero(offset, length)
        handle.sync()
    return erased
