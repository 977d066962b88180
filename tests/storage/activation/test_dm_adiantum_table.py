"""The dm-crypt table of an adiantum segment: the cipher as the header names it (dm-crypt reads
``xchacha12,aes-adiantum-plain64`` as the kernel template ``adiantum(xchacha12,aes)``, as for cryptsetup), and
only a 256-bit key."""

from __future__ import annotations

import pytest

from volumed.storage.activation import ActivationError, DataSegment, cipher_problem, crypt_table

KEY = bytes(range(32))


@pytest.mark.parametrize("cipher", ["xchacha12,aes-adiantum-plain64", "xchacha20,aes-adiantum-plain64"])
def test_adiantum_table_keeps_the_cipher_string(cipher: str) -> None:
    segment = DataSegment(device="/dev/vda3", offset=16 << 20, size=None, sector_size=4096, cipher=cipher)
    table = crypt_table(segment, source="/dev/vda3", size=100 << 20, volume_key=KEY)
    assert table.line(key_spec=":32:logon:volumed:luks2-EPHEMERAL") == (
        f"0 204800 crypt {cipher} :32:logon:volumed:luks2-EPHEMERAL 0 /dev/vda3 32768 1 sector_size:4096"
    )
    with pytest.raises(ActivationError, match=f"{cipher} needs a 256-bit key, got 512 bits") as info:
        crypt_table(segment, source="/dev/vda3", size=4096, volume_key=KEY * 2)
    assert KEY.hex() not in str(info.value)


def test_cipher_problem_per_backend() -> None:
    """What a controller can ask before formatting: dm serves adiantum, fuse names the way out."""
    for cipher in ("aes-xts-plain64", "xchacha12,aes-adiantum-plain64", "xchacha20,aes-adiantum-plain64"):
        assert cipher_problem("dm", cipher) is None
    assert cipher_problem("fuse", "aes-xts-plain64") is None
    assert cipher_problem("fuse", "xchacha20,aes-adiantum-plain64") == (
        "xchacha20,aes-adiantum-plain64: the fuse backend has no userspace adiantum data path; "
        "use --backend dm"
    )
    assert (
        cipher_problem("dm", "serpent-xts-plain64")
        == "unsupported cipher 'serpent-xts-plain64' for dm-crypt activation"
    )
