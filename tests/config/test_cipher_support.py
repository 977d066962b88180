"""Validation accepts exactly the ciphers and key sizes the LUKS2 library can format, so `volumed run` never
refuses a config that `volumed config validate` called valid."""

from __future__ import annotations

import pytest
import structlog
from click.testing import CliRunner

from volumed.cli import volumed
from volumed.config import SUPPORTED_CIPHERS, SUPPORTED_KEY_SIZES_BITS, check_config, load_config
from volumed.storage.luks2 import FormatOptions, InvalidMetadataError
from volumed.storage.luks2._area_cipher import SUPPORTED_CIPHERS as STORAGE_CIPHERS

ADIANTUM = ("xchacha12,aes-adiantum-plain64", "xchacha20,aes-adiantum-plain64")

SUPPORTED = (
    "encryption.cipher: unsupported cipher (supported: aes-xts-plain64, xchacha12,aes-adiantum-plain64, "
    "xchacha20,aes-adiantum-plain64)"
)
HEAD = "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\nencryption:\n  keys: [{nodeID: {}}]\n"

REFUSED = [
    (
        "  cipher: bogus-cipher\n",
        SUPPORTED,
        "bogus-cipher",
        None,
    ),
    (
        "  cipher: aes-cbc-essiv:sha256\n",
        SUPPORTED,
        "aes-cbc-essiv:sha256",
        None,
    ),
    (
        "  cipher: xchacha12,aes-adiantum-plain64\n  keySize: 512\n",
        "encryption.keySize: unsupported key size for xchacha12,aes-adiantum-plain64 (supported: 256 bits)",
        "xchacha12,aes-adiantum-plain64",
        512,
    ),
    (
        "  cipher: aes-adiantum-plain64\n",
        SUPPORTED,
        "aes-adiantum-plain64",
        None,
    ),
    (
        "  keySize: 128\n",
        "encryption.keySize: unsupported key size for aes-xts-plain64 (supported: 256 or 512 bits)",
        None,
        128,
    ),
    (
        "  cipher: aes-xts-plain64\n  keySize: 384\n",
        "encryption.keySize: unsupported key size for aes-xts-plain64 (supported: 256 or 512 bits)",
        None,
        384,
    ),
    (
        "  keySize: -512\n",
        "encryption.keySize: unsupported key size for aes-xts-plain64 (supported: 256 or 512 bits)",
        None,
        None,
    ),
]


@pytest.mark.parametrize(("extra", "message", "cipher", "bits"), REFUSED, ids=[case[0] for case in REFUSED])
def test_unsupported_cipher_or_key_size_is_refused(
    extra: str, message: str, cipher: str | None, bits: int | None
) -> None:
    _, issues = check_config(HEAD + extra)
    assert [str(issue) for issue in issues] == [f"VolumeConfig/EPHEMERAL: {message}"]
    if cipher is not None or bits is not None:  # storage refuses it too: this is what `volumed run` hits
        with pytest.raises(InvalidMetadataError):
            FormatOptions(cipher=cipher or "aes-xts-plain64", key_size=(bits or 512) // 8)


def test_config_validate_refuses_it() -> None:
    structlog.reset_defaults()
    text = HEAD + "  cipher: bogus-cipher\n"
    result = CliRunner().invoke(volumed, ["config", "validate", "-"], input=text, catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (
        1,
        f"VolumeConfig/EPHEMERAL: {SUPPORTED}\n",
    )


def test_config_lists_what_storage_supports() -> None:
    assert SUPPORTED_CIPHERS == STORAGE_CIPHERS


@pytest.mark.parametrize("cipher", ["", *SUPPORTED_CIPHERS])
@pytest.mark.parametrize("bits", [0, *SUPPORTED_KEY_SIZES_BITS])
def test_every_accepted_combination_can_be_formatted(cipher: str, bits: int) -> None:
    extra = (f"  cipher: {cipher}\n" if cipher else "") + (f"  keySize: {bits}\n" if bits else "")
    _, issues = check_config(HEAD + extra)
    if issues:  # refused by validation: storage must refuse it too
        assert (cipher in ADIANTUM, bits) == (True, 512)
        with pytest.raises(InvalidMetadataError):
            FormatOptions(cipher=cipher, key_size=bits // 8)
        return
    volume = load_config(HEAD + extra).volume("EPHEMERAL")
    assert volume is not None
    encryption = volume.encryption
    FormatOptions(cipher=encryption.effective_cipher, key_size=encryption.effective_key_size_bits // 8)


@pytest.mark.parametrize(("cipher", "bits"), [("", 512), *((cipher, 256) for cipher in ADIANTUM)])
def test_default_key_size_is_talos_per_cipher(cipher: str, bits: int) -> None:
    """go-blockdevice's keySizeDefaults: 512 bits for aes-xts-plain64, 256 for adiantum (its only size)."""
    extra = f"  cipher: {cipher}\n" if cipher else ""
    volume = load_config(HEAD + extra).volume("EPHEMERAL")
    assert volume is not None
    assert volume.encryption.effective_key_size_bits == bits
