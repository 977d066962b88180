"""The boot phase arithmetic: PCR 11 after a phase word, and whether a PCR 11 value is one the UKI signed.

Expected values are worked out here with hashlib and struct from the TPM 2.0 spec (PCR_Extend, PolicyPCR),
not with volumed's policy code.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest

from volumed.keys.tpm import (
    PCRSignature,
    UKIFileError,
    boot_phase_digest,
    parse_pcr_public_key,
    pcr11_is_signed,
    pcr_after_phase,
)

TPM_CC_POLICY_PCR = 0x17F


def hand_policy_pcr11(value: bytes) -> bytes:
    """PolicyPCR over PCR 11 (SHA-256 bank) from a zero digest: TPML_PCR_SELECTION with one bank, 3 bytes."""
    selection = struct.pack(">IHB", 1, 0x000B, 3) + bytes([0x00, 0x08, 0x00])  # bit 11 = byte 1, bit 3
    return hashlib.sha256(
        bytes(32) + struct.pack(">I", TPM_CC_POLICY_PCR) + selection + hashlib.sha256(value).digest()
    ).digest()


@pytest.fixture
def key_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_pcr_after_a_phase_is_an_extend_with_the_word_digest() -> None:
    value = bytes(range(32))
    word = hashlib.sha256(b"enter-machined").digest()
    assert boot_phase_digest("enter-machined") == word
    assert pcr_after_phase(value, "enter-machined") == hashlib.sha256(value + word).digest()


def test_a_value_is_signed_when_its_policy_digest_is_in_the_signatures(key_pem: bytes) -> None:
    key = parse_pcr_public_key(key_pem, path=Path("pub.pem"))
    signed_value = hashlib.sha256(b"PCR 11 at enter-machined").digest()
    entry = PCRSignature((11,), key.fingerprint, hand_policy_pcr11(signed_value), b"sig")
    path = Path("sig.json")
    assert pcr11_is_signed(signed_value, key, (entry,), path=path)
    assert not pcr11_is_signed(pcr_after_phase(signed_value, "start-the-world"), key, (entry,), path=path)
    other = PCRSignature((11,), "00" * 32, hand_policy_pcr11(signed_value), b"sig")
    with pytest.raises(UKIFileError, match="made with another key"):
        pcr11_is_signed(signed_value, key, (other,), path=path)
