"""Probing hand-made signatures (offsets from the format definitions), and robustness on random bytes."""

from __future__ import annotations

import struct
import uuid

from hypothesis import given
from hypothesis import strategies as st

from volumed.storage.probe import SignatureType, is_zeroed, probe, probe_all

MIB = 1024 * 1024
U = uuid.UUID("12345678-9abc-def0-1234-56789abcdef0")


def disk(size: int = 2 * MIB) -> bytearray:
    return bytearray(size)


def read_of(buf: bytearray):  # type: ignore[no-untyped-def]
    return lambda offset, length: bytes(buf[offset : offset + length])


def probe_buf(buf: bytearray):  # type: ignore[no-untyped-def]
    return probe(read_of(buf), len(buf))


def test_empty_is_none_and_zeroed() -> None:
    buf = disk()
    assert probe_buf(buf) is None
    assert is_zeroed(read_of(buf))
    buf[MIB - 1] = 1
    assert not is_zeroed(read_of(buf))
    assert probe_buf(buf) is None  # non-zero data without a signature still counts as empty for Talos


def test_luks2_primary_and_secondary() -> None:
    buf = disk()
    buf[0:8] = b"LUKS\xba\xbe\x00\x02"
    struct.pack_into(">Q", buf, 8, 0x4000)
    buf[24:29] = b"label"
    buf[168:204] = str(U).encode()
    buf[0x4000:0x4008] = b"SKUL\xba\xbe\x00\x02"
    sig = probe_buf(buf)
    assert sig is not None
    assert (sig.type, sig.version, sig.label, sig.uuid) == (SignatureType.LUKS, "2", "label", str(U))
    assert sig.magics == ((0, 6), (0x4000, 6))
    assert sig.blkid_type == "crypto_LUKS"
    assert not sig.is_filesystem


def test_xfs_ext_family() -> None:
    buf = disk()
    buf[0:4] = b"XFSB"
    buf[32:48] = U.bytes
    buf[108:112] = b"STAT"
    sig = probe_buf(buf)
    assert sig is not None
    assert (sig.type, sig.label, sig.uuid) == (SignatureType.XFS, "STAT", str(U))

    def ext(compat: int, incompat: int, ro: int) -> SignatureType:
        b = disk()
        b[1024 + 56 : 1024 + 58] = b"\x53\xef"
        struct.pack_into("<III", b, 1024 + 92, compat, incompat, ro)
        s = probe_buf(b)
        assert s is not None
        assert s.is_filesystem
        return s.type

    assert ext(0, 0x2, 0x1) is SignatureType.EXT2
    assert ext(0x4, 0x2, 0x3) is SignatureType.EXT3
    assert ext(0x4, 0x2 | 0x40, 0x3) is SignatureType.EXT4  # extents
    assert ext(0x4, 0x2, 0x400) is SignatureType.EXT4  # metadata_csum


def test_swap_with_page_size_8k() -> None:
    buf = disk()
    buf[8192 - 10 : 8192] = b"SWAPSPACE2"
    buf[1052:1056] = b"swp1"
    sig = probe_buf(buf)
    assert sig is not None
    assert (sig.type, sig.label, sig.magics) == (
        SignatureType.SWAP,
        "swp1",
        ((8182, 10),),
    )


def test_vfat_is_not_an_mbr_and_an_mbr_is_detected() -> None:
    fat = disk()
    fat[0] = 0xEB
    fat[54:62] = b"FAT16   "
    fat[43:54] = b"NO NAME    "
    fat[510:512] = b"\x55\xaa"
    assert [s.type for s in probe_all(read_of(fat), len(fat))] == [SignatureType.VFAT]

    mbr = disk()
    mbr[510:512] = b"\x55\xaa"
    mbr[446 + 4] = 0x83
    struct.pack_into("<I", mbr, 440, 0xDEADBEEF)
    sig = probe_buf(mbr)
    assert sig is not None
    assert (sig.type, sig.uuid, sig.blkid_type) == (SignatureType.MBR, "deadbeef", "dos")
    mbr[446] = 0x12  # invalid boot flag: not a partition table
    assert probe_buf(mbr) is None


def test_gpt_hides_its_protective_mbr_and_lists_the_backup() -> None:
    buf = disk()
    buf[510:512] = b"\x55\xaa"
    buf[446 + 4] = 0xEE
    buf[512:520] = b"EFI PART"
    buf[512 + 56 : 512 + 72] = U.bytes_le
    buf[len(buf) - 512 : len(buf) - 504] = b"EFI PART"
    found = probe_all(read_of(buf), len(buf))
    assert [s.type for s in found] == [SignatureType.GPT]
    assert found[0].uuid == str(U)
    assert found[0].is_partition_table
    assert found[0].magics == ((512, 8), (510, 2), (len(buf) - 512, 8))


def test_lvm2_and_btrfs() -> None:
    buf = disk(80 * MIB)
    buf[512:520] = b"LABELONE"
    struct.pack_into("<I", buf, 512 + 20, 32)
    buf[512 + 24 : 512 + 32] = b"LVM2 001"
    buf[544:576] = b"abcdef0123456789ABCDEFGHIJKLMNOP"
    sig = probe_buf(buf)
    assert sig is not None
    assert sig.type is SignatureType.LVM2
    assert sig.uuid == "abcdef-0123-4567-89AB-CDEF-GHIJ-KLMNOP"

    btr = disk(80 * MIB)
    for off in (0x10000, 0x4000000):
        btr[off + 0x40 : off + 0x48] = b"_BHRfS_M"
    btr[0x10000 + 0x20 : 0x10000 + 0x30] = U.bytes
    btr[0x10000 + 0x12B : 0x10000 + 0x12E] = b"btr"
    sig = probe_buf(btr)
    assert sig is not None
    assert (sig.type, sig.label, sig.uuid) == (SignatureType.BTRFS, "btr", str(U))
    assert sig.magics == ((0x10040, 8), (0x4000040, 8))


@given(st.binary(min_size=0, max_size=70_000))
def test_random_bytes_never_crash(data: bytes) -> None:
    buf = bytearray(data)
    for sig in probe_all(read_of(buf), len(buf)):
        assert all(off >= 0 and n > 0 for off, n in sig.magics)


@given(st.sampled_from([b"XFSB", b"LUKS\xba\xbe", b"LABELONE", b"EFI PART"]), st.integers(0, 4096))
def test_truncated_regions_with_magic_never_crash(magic: bytes, size: int) -> None:
    buf = bytearray(size)
    buf[0 : len(magic)] = magic[:size]
    buf[512 : 512 + len(magic)] = magic[: max(0, size - 512)]
    probe_all(read_of(buf), len(buf))
