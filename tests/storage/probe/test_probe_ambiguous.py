"""A lone LUKS2 secondary header never hides another signature, and the blank/LUKS/ambiguous verdict
(`RegionContent.kind`) from the facts of a probe (issue 15, items 1 and 4). Pure: no blkid run here."""

from __future__ import annotations

import pytest

from volumed.storage.probe import (
    BlkidReport,
    ContentKind,
    ReadAt,
    RegionContent,
    Signature,
    SignatureType,
    probe,
    probe_all,
)

MIB = 1 << 20


def _disk(*, ext4: bool, secondary_at: int | None, primary: bool = False) -> bytearray:
    data = bytearray(8 * MIB)
    if ext4:
        data[1024 + 56 : 1024 + 58] = b"\x53\xef"
    if primary:
        data[0:8] = b"LUKS\xba\xbe\x00\x02"
    if secondary_at is not None:
        data[secondary_at : secondary_at + 8] = b"SKUL\xba\xbe\x00\x02"
    return data


def _read(data: bytearray) -> ReadAt:
    return lambda offset, length: bytes(data[offset : offset + length])


def test_ext4_with_a_stale_secondary_header_probes_as_ext4() -> None:
    data = _disk(ext4=True, secondary_at=4 * MIB)
    found = probe_all(_read(data), len(data))
    assert [s.type for s in found] == [SignatureType.LUKS, SignatureType.EXT2]  # a bare superblock: ext2
    sig = probe(_read(data), len(data))
    assert sig is not None
    assert sig.type in (SignatureType.EXT2, SignatureType.EXT3, SignatureType.EXT4)


def test_a_secondary_header_alone_is_still_luks() -> None:
    data = _disk(ext4=False, secondary_at=0x4000)
    sig = probe(_read(data), len(data))
    assert sig is not None
    assert sig.type is SignatureType.LUKS


LUKS_SECONDARY = Signature(SignatureType.LUKS, ((0x400000, 6),), version="2")
LUKS_PRIMARY = Signature(SignatureType.LUKS, ((0, 6), (0x4000, 6)), version="2")
EXT4 = Signature(SignatureType.EXT4, ((1080, 2),))


@pytest.mark.parametrize(
    ("signatures", "blkid", "zeroed", "kind", "text"),
    [
        ((), BlkidReport(), True, ContentKind.BLANK, "nothing"),
        ((), BlkidReport(), False, ContentKind.UNKNOWN, "unknown data"),
        ((), BlkidReport(("minix",)), True, ContentKind.OTHER, "minix"),
        ((), BlkidReport((), ambivalent=True), True, ContentKind.OTHER, "several signatures"),
        ((LUKS_PRIMARY,), BlkidReport(), False, ContentKind.LUKS, "crypto_LUKS"),
        ((LUKS_SECONDARY,), BlkidReport(("crypto_LUKS",)), False, ContentKind.LUKS, "crypto_LUKS"),
        ((LUKS_SECONDARY, EXT4), BlkidReport(("crypto_LUKS", "ext4")), False, ContentKind.AMBIGUOUS, "ext4"),
        ((LUKS_SECONDARY,), BlkidReport(("crypto_LUKS", "minix")), False, ContentKind.AMBIGUOUS, "minix"),
        ((), BlkidReport(("crypto_LUKS", "zfs_member")), False, ContentKind.AMBIGUOUS, "zfs_member"),
        ((EXT4,), BlkidReport(("ext4",)), True, ContentKind.OTHER, "ext4"),
    ],
)
def test_verdict(
    signatures: tuple[Signature, ...], blkid: BlkidReport, zeroed: bool, kind: ContentKind, text: str
) -> None:
    content = RegionContent("/dev/x", 0, signatures, blkid, zeroed)
    assert content.kind is kind
    assert text in content.describe()
    if kind is ContentKind.AMBIGUOUS:
        assert content.describe().startswith("ambiguous signatures on /dev/x (a stale LUKS2 secondary header")
