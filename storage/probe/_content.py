"""What a region holds, asked before anything is formatted: blank, LUKS, something else, or ambiguous.

"Blank" must be provable, because formatting destroys whatever is there: no signature our detectors know,
none libblkid knows, and (unless the caller says the bytes may be noise) zero at every sample point of
`blank_sample_ranges`: the first and last MiB and 64 KiB at each power-of-two MiB offset. Data after a zeroed
first MiB (a btrfs mirror superblock at 64 MiB, an ext4 backup superblock at 128 MiB, a GPT backup header at
the end, plain data at 1 MiB) is not blank. A sample is not a proof that everything between is zero: mkfs is
therefore never allowed to discard (`filesystem.make_filesystem`). A LUKS2
secondary header alone, beside another signature, is the leftover of an old volume over somebody's data:
cryptsetup calls that "ambiguous" and neither opens nor repairs it, and neither do we.

One leftover counts as blank too: the LUKS2 header of a format of volumed's own that was interrupted (no key
slot, only its ``volumed-format-pending`` token, in exactly the states `luks2.interrupted_format` knows), with
no other signature beside it. No key can open it, so formatting it again loses nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from ._blkid import BlkidReport, blkid_probe
from ._probe import MIB, first_nonzero, first_signature, is_secondary_only, probe_all
from ._signature import Signature, SignatureType

if TYPE_CHECKING:
    from volumed.storage.blockdev import Region

_LUKS_BLKID: Final = "crypto_LUKS"


class ContentKind(enum.StrEnum):
    BLANK = "blank"  # nothing there: safe to format
    LUKS = "luks"  # a LUKS header with a primary copy, or a secondary copy with nothing else beside it
    OTHER = "other"  # a signature that is not LUKS (ours or libblkid's)
    AMBIGUOUS = "ambiguous"  # a LUKS2 secondary header alone, beside another signature
    UNKNOWN = "unknown"  # no signature anyone knows, yet the first MiB holds data
    INTERRUPTED_FORMAT = "interrupted-format"  # volumed's own LUKS2 format, cut short: safe to format again


@dataclass(frozen=True)
class RegionContent:
    """The facts of one probe and the verdict drawn from them (``kind``).

    ``path``/``offset`` name the region; ``signatures``: what our detectors found (most specific first);
    ``blkid``: what libblkid found (not asked when our own signatures settle it); ``zeroed``: every sample
    point is zero (True when not checked), else ``nonzero_at`` is the first non-zero byte; ``format_pending``:
    the UUID of volumed's own LUKS2 format that
    the header shows interrupted (`luks2.interrupted_format`), else None.
    """

    path: str
    offset: int = 0
    signatures: tuple[Signature, ...] = ()
    blkid: BlkidReport = field(default_factory=BlkidReport)
    zeroed: bool = True
    format_pending: str | None = None
    nonzero_at: int | None = None

    @property
    def luks(self) -> Signature | None:
        return next((s for s in self.signatures if s.type is SignatureType.LUKS), None)

    @property
    def others(self) -> tuple[str, ...]:
        """Every non-LUKS signature, by blkid's name, ours first, each once."""
        names = [s.blkid_type for s in self.signatures if s.type is not SignatureType.LUKS]
        names += [t for t in self.blkid.types if t != _LUKS_BLKID]
        if self.blkid.ambivalent:
            names.append("several signatures libblkid could not choose between")
        return tuple(dict.fromkeys(names))

    @property
    def kind(self) -> ContentKind:
        luks = self.luks
        if self.format_pending is not None:  # ours, unless anything else is there too
            return ContentKind.OTHER if self.others else ContentKind.INTERRUPTED_FORMAT
        if luks is not None and not is_secondary_only(luks):
            return ContentKind.LUKS
        if luks is not None or _LUKS_BLKID in self.blkid.types:
            return ContentKind.AMBIGUOUS if self.others else ContentKind.LUKS
        if self.others:
            return ContentKind.OTHER
        return ContentKind.BLANK if self.zeroed else ContentKind.UNKNOWN

    @property
    def signature(self) -> Signature | None:
        """The signature our detectors would report for the region (see `probe`)."""
        return first_signature(self.signatures)

    def describe(self) -> str:
        """What is there, for "block dev type mismatch: <this> != luks" (no contents, only names)."""
        kind = self.kind
        if kind is ContentKind.AMBIGUOUS:
            luks = self.luks
            where = f" at offset {luks.magics[0][0]:#x}" if luks is not None else ""
            device = self.path + (f" at byte {self.offset}" if self.offset else "")
            return (
                f"ambiguous signatures on {device} (a stale LUKS2 secondary header{where} and "
                f"{', '.join(self.others)})"
            )
        if kind is ContentKind.UNKNOWN:
            if self.nonzero_at is not None and self.nonzero_at >= MIB:
                return f"unknown data (no signature libblkid knows, but byte {self.nonzero_at} is not zero)"
            return "unknown data (no signature libblkid knows, but the first MiB is not zero)"
        if kind is ContentKind.BLANK:
            return "nothing"
        if kind is ContentKind.LUKS:
            return _LUKS_BLKID
        if kind is ContentKind.INTERRUPTED_FORMAT:
            return f"an interrupted LUKS2 format of volumed (UUID {self.format_pending}, no key slot)"
        return ", ".join(self.others)


def examine_region(region: Region, *, zero_check: bool = True) -> RegionContent:
    """Probe ``region`` with our detectors and with libblkid (blocking: run it in a worker thread).

    ``zero_check=False`` where the bytes are noise by design (the decrypted view of a fresh LUKS2 volume):
    then only signatures count. Raises ``OSError`` (``BlkidError`` included) when the region cannot be
    read or libblkid cannot be asked: the caller must then format nothing.
    """
    with region.open() as handle:
        handle.drop_cache()
        signatures = tuple(probe_all(handle.read, region.size))
        nonzero = first_nonzero(handle.read, region.size) if zero_check else None
    zeroed = nonzero is None
    pending = _format_pending(region) if any(s.type is SignatureType.LUKS for s in signatures) else None
    content = RegionContent(
        region.path, region.offset, signatures, zeroed=zeroed, format_pending=pending, nonzero_at=nonzero
    )
    if pending is None and signatures and not any(is_secondary_only(s) for s in signatures):
        return content  # settled without libblkid: LUKS (a primary header), or another signature we know
    # Asked also for an interrupted format of ours: it is blank only if libblkid sees nothing else either.
    report = blkid_probe(region.path, region.offset, region.size)
    return RegionContent(region.path, region.offset, signatures, report, zeroed, pending, nonzero)


def _format_pending(region: Region) -> str | None:
    """`luks2.interrupted_format` over ``region`` (reads only)."""
    from volumed.storage.luks2 import interrupted_format
    from volumed.storage.luks2.lowlevel import Region as Luks2Region

    with open(region.path, "rb") as file:
        return interrupted_format(
            Luks2Region(file, offset=region.offset, size=region.size, writable=False, name=region.path)
        )
