"""The dm backend's pure parts: the dm-crypt table cryptsetup would load, dm UUIDs, and key hygiene."""

from __future__ import annotations

import pytest

from volumed.storage.activation import ActivationError, CryptTable, DataSegment, crypt_table, dm_uuid

KEY = bytes(range(64))


def test_table_for_4096_byte_sectors_matches_cryptsetup() -> None:
    segment = DataSegment(device="/dev/vda3", offset=16 << 20, size=None, sector_size=4096)
    table = crypt_table(segment, source="/dev/vda3", size=100 << 20, volume_key=KEY)
    assert table.line() == (
        f"0 204800 crypt aes-xts-plain64 {KEY.hex()} 0 /dev/vda3 32768 1 sector_size:4096"
    )
    assert table.line(key_spec=":64:logon:volumed:luks2-STATE") == (
        "0 204800 crypt aes-xts-plain64 :64:logon:volumed:luks2-STATE 0 /dev/vda3 32768 1 sector_size:4096"
    )


def test_table_for_512_byte_sectors_has_no_options_and_keeps_iv_tweak() -> None:
    segment = DataSegment(device="/dev/loop3", offset=0, size=1 << 20, sector_size=512, iv_tweak=2048)
    table = crypt_table(segment, source="/dev/loop3", size=1 << 20, volume_key=KEY[:32])
    assert table.line() == f"0 2048 crypt aes-xts-plain64 {KEY[:32].hex()} 2048 /dev/loop3 0"


def test_key_is_not_in_repr_or_redacted_line() -> None:
    segment = DataSegment(device="/dev/vda3", offset=0, size=None, sector_size=4096)
    table = crypt_table(segment, source="/dev/vda3", size=4096, volume_key=KEY)
    assert KEY.hex() not in repr(table)
    assert KEY.hex() not in table.redacted()
    assert table.redacted() == "0 8 crypt aes-xts-plain64 - 0 /dev/vda3 0 1 sector_size:4096"
    assert isinstance(table, CryptTable)


def test_bad_keys_and_ciphers_are_refused_without_showing_the_key() -> None:
    segment = DataSegment(device="/dev/vda3", offset=0, size=None, sector_size=512)
    with pytest.raises(ActivationError, match="256- or 512-bit key, got 40 bits") as info:
        crypt_table(segment, source="/dev/vda3", size=512, volume_key=b"short")
    assert "short" not in str(info.value)
    other = DataSegment(
        device="/dev/vda3", offset=0, size=None, sector_size=512, cipher="serpent-xts-plain64"
    )
    with pytest.raises(ActivationError, match="unsupported cipher 'serpent-xts-plain64'"):
        crypt_table(other, source="/dev/vda3", size=512, volume_key=KEY)


def test_dm_uuid_like_cryptsetup() -> None:
    assert (
        dm_uuid("luks2-STATE", "0b1e6c2f-7a52-4c36-9a0c-2ab9c5f0e0d1")
        == "CRYPT-LUKS2-0b1e6c2f7a524c369a0c2ab9c5f0e0d1-luks2-STATE"
    )
    assert dm_uuid("luks2-STATE", None) == "CRYPT-VOLUMED-luks2-STATE"
