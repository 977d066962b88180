"""Adiantum in the LUKS2 library: the cipher against the Linux kernel's test vectors, key slot areas
encrypted with it (cryptsetup uses the segment cipher for them, so an adiantum volume has adiantum key slots),
the key slot operations on such a volume, and cryptsetup reading the header volumed formats.

Unlocking a header that cryptsetup made and cryptsetup accepting key slots volumed wrote need the kernel's
adiantum (cryptsetup has no userspace adiantum, and this machine's kernel has neither it nor device-mapper):
the kernel tier does both (tests/kernel/guest/adiantum_interop.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.storage.luks2._luks2_helpers import OTHER, PASS, cryptsetup, format_small
from volumed.cli import volumed
from volumed.storage.luks2 import FormatOptions, InvalidMetadataError, Luks2Volume, NoKeyError
from volumed.storage.luks2.adiantum import Adiantum
from volumed.storage.luks2.lowlevel import decrypt_area, encrypt_area

VECTORS = json.loads((Path(__file__).parent / "data" / "adiantum-testmgr.json").read_text())
ADIANTUM = {"xchacha12,aes-adiantum-plain64": 12, "xchacha20,aes-adiantum-plain64": 20}


def _cases() -> list[tuple[str, int, dict[str, str]]]:
    return [
        (name, rounds, vector)
        for name, rounds in (("xchacha12", 12), ("xchacha20", 20))
        for vector in VECTORS[name]
    ]


@pytest.mark.parametrize(
    ("name", "rounds", "vector"),
    _cases(),
    ids=[f"{name}-{len(vector['ptext']) // 2}" for name, _, vector in _cases()],
)
def test_kernel_test_vectors(name: str, rounds: int, vector: dict[str, str]) -> None:
    cipher = Adiantum(bytes.fromhex(vector["key"]), rounds=rounds)
    tweak, plain, encrypted = (bytes.fromhex(vector[k]) for k in ("iv", "ptext", "ctext"))
    assert cipher.encrypt(plain, tweak) == encrypted
    assert cipher.decrypt(encrypted, tweak) == plain


def test_bad_key_tweak_and_length_are_refused_without_showing_the_key() -> None:
    key = bytes(range(32))
    with pytest.raises(ValueError, match="256-bit key, got 512 bits"):
        Adiantum(key * 2)
    cipher = Adiantum(key)
    assert key.hex() not in repr(cipher)
    with pytest.raises(ValueError, match="tweak is 32 bytes"):
        cipher.encrypt(bytes(512), bytes(16))
    with pytest.raises(ValueError, match="at least 16 bytes"):
        cipher.encrypt(bytes(15), bytes(32))


@pytest.mark.parametrize("spec", ADIANTUM)
def test_area_units_use_the_plain64_tweak_from_the_area_start(spec: str) -> None:
    key = bytes(range(32))
    data = bytes(range(256)) * 6  # three 512-byte units
    area = encrypt_area(data, key, spec)
    cipher = Adiantum(key, rounds=ADIANTUM[spec])
    for unit in range(3):
        tweak = unit.to_bytes(8, "little") + bytes(24)
        assert area[unit * 512 : (unit + 1) * 512] == cipher.encrypt(
            data[unit * 512 : (unit + 1) * 512], tweak
        )
    assert decrypt_area(area, key, spec) == data
    with pytest.raises(InvalidMetadataError, match=f"{spec} needs a 256-bit key, got 512 bits"):
        encrypt_area(data, key * 2, spec)


@pytest.mark.parametrize("spec", ADIANTUM)
def test_format_refuses_a_512_bit_adiantum_key(spec: str) -> None:
    with pytest.raises(InvalidMetadataError, match="needs a 256-bit key"):
        FormatOptions(cipher=spec, key_size=64)


@pytest.mark.parametrize("spec", ADIANTUM)
def test_key_slot_operations_on_an_adiantum_volume(tmp_path: Path, spec: str) -> None:
    path = tmp_path / "adiantum.img"
    with format_small(path, cipher=spec, key_size=32) as volume:
        assert volume.segment.encryption == spec
        assert volume.keyslots[0].area_encryption == spec
        assert volume.keyslots[0].area_key_size == 32
        key = volume.unlock(PASS)
        assert len(key.material) == 32
        slot = volume.add_key(OTHER, passphrase=PASS, keyslot=3)
        assert volume.keyslots[slot].area_encryption == spec
    with Luks2Volume.open(path) as volume:
        assert volume.unlock(OTHER, keyslot=3).material == key.material
        volume.change_key(PASS, b"changed", keyslot=0)
        volume.kill_slot(3)
    with Luks2Volume.open(path, read_only=True) as volume:
        assert volume.unlock(b"changed").material == key.material
        with pytest.raises(NoKeyError):
            volume.unlock(PASS)
        with pytest.raises(NoKeyError):
            volume.unlock(OTHER)


@pytest.mark.interop
@pytest.mark.parametrize("spec", ADIANTUM)
def test_cryptsetup_reads_the_adiantum_header_volumed_formats(tmp_path: Path, spec: str) -> None:
    path = tmp_path / "adiantum.img"
    format_small(path, cipher=spec, key_size=32).close()
    cryptsetup("isLuks", "--type", "luks2", path)
    dump = cryptsetup("luksDump", path).stdout
    assert f"cipher: {spec}" in dump
    assert f"Cipher:     {spec}" in dump
    assert "Cipher key: 256 bits" in dump
    metadata = json.loads(cryptsetup("luksDump", "--dump-json-metadata", path).stdout)
    assert metadata["segments"]["0"]["encryption"] == spec
    assert metadata["keyslots"]["0"]["area"]["encryption"] == spec
    assert metadata["keyslots"]["0"]["key_size"] == 32


def test_payload_of_an_adiantum_volume_is_refused_naming_the_cipher(tmp_path: Path) -> None:
    """The payload cipher (and with it ``luks read``/``write`` and the fuse backend) is AES-XTS only."""
    spec = "xchacha12,aes-adiantum-plain64"
    with format_small(tmp_path / "adiantum.img", cipher=spec, key_size=32) as volume:
        key = volume.unlock(PASS)
        with pytest.raises(ValueError, match=f"unsupported payload cipher '{spec}'"):
            volume.payload(key)


@pytest.mark.interop
def test_cli_formats_adiantum_with_a_256_bit_key(tmp_path: Path) -> None:
    spec = "xchacha20,aes-adiantum-plain64"
    path = tmp_path / "cli.img"
    path.write_bytes(bytes(3 << 20))
    key = tmp_path / "key"
    key.write_bytes(PASS)
    common = ["--batch-mode", "--key-file", key, "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
    layout = ["--luks2-keyslots-size", "1048576"]

    def luks(*args: object) -> Result:
        return CliRunner().invoke(volumed, ["luks", *map(str, args)], catch_exceptions=False)

    refused = luks("format", *common, *layout, "-c", spec, path)  # the default 512-bit key
    assert refused.exit_code != 0
    assert f"{spec} needs a 256-bit key, got 512 bits" in refused.output
    assert path.read_bytes() == bytes(3 << 20)
    done = luks("format", *common, *layout, "-c", spec, "-s", "256", path)
    assert done.exit_code == 0, done.output
    assert f"cipher: {spec}" in cryptsetup("luksDump", path).stdout
    with Luks2Volume.open(path, read_only=True) as volume:
        assert len(volume.unlock(PASS).material) == 32
