"""The UKI's PCR-signing key and systemd's PCR signature JSON: parsing, and errors naming file and field."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from volumed.keys.tpm import (
    DEFAULT_PCR_PUBLIC_KEY,
    DEFAULT_PCR_SIGNATURE,
    UKIFileError,
    boot_phase_digest,
    parse_pcr_public_key,
    parse_pcr_signatures,
)
from volumed.keys.tpm._uki import find_signature, load_pcr_public_key

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
WHERE = Path("/.extra/tpm2-pcr-public-key.pem")
SIGNATURES = Path("/.extra/tpm2-pcr-signature.json")


def test_default_paths_are_systemd_stubs() -> None:
    assert DEFAULT_PCR_PUBLIC_KEY == WHERE
    assert DEFAULT_PCR_SIGNATURE == SIGNATURES


def test_key_name_is_talos_rsa_template() -> None:
    """nameAlg SHA-256 || SHA-256(TPMT_PUBLIC: RSA, SHA-256, userWithAuth|decrypt|sign, no policy, NULL
    symmetric and scheme, 2048 bits, exponent 65537 written out, the modulus)."""
    numbers = KEY.public_key().public_numbers()
    public = (
        bytes.fromhex("0001" "000b" "00060040" "0000" "0010" "0010" "0800" "00010001" "0100")
        + numbers.n.to_bytes(256, "big")
    )  # fmt: skip
    key = parse_pcr_public_key(PEM, path=WHERE)
    assert key.name == bytes.fromhex("000b") + hashlib.sha256(public).digest()
    assert key.public_area == len(public).to_bytes(2, "big") + public
    der = KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    assert key.fingerprint == hashlib.sha256(der).hexdigest()


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (b"not pem", "is not a PEM public key"),
        (
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
            "is not an RSA key",
        ),
    ],
)
def test_bad_keys_are_named(pem: bytes, message: str) -> None:
    with pytest.raises(UKIFileError, match=f"PCR signing public key {WHERE} {message}"):
        parse_pcr_public_key(pem, path=WHERE)


def test_missing_key_file_says_no_uki(tmp_path: Path) -> None:
    with pytest.raises(UKIFileError, match=r"missing\.pem is missing: the node did not boot a signed UKI"):
        load_pcr_public_key(tmp_path / "missing.pem")


def entry(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "pcrs": [11],
        "pkfp": parse_pcr_public_key(PEM, path=WHERE).fingerprint,
        "pol": "ab" * 32,
        "sig": base64.b64encode(b"signature").decode(),
    }
    base.update(fields)
    return base


def test_signatures_parse_and_match_by_policy_digest() -> None:
    data = json.dumps({"sha256": [entry(pol="cd" * 32), entry()], "sha1": [{"junk": 1}]}).encode()
    signatures = parse_pcr_signatures(data, path=SIGNATURES)
    key = parse_pcr_public_key(PEM, path=WHERE)
    found = find_signature(signatures, bytes.fromhex("ab" * 32), key, path=SIGNATURES)
    assert found is not None
    assert found.signature == b"signature"
    assert find_signature(signatures, bytes(32), key, path=SIGNATURES) is None


def test_signature_of_another_key_is_refused() -> None:
    signatures = parse_pcr_signatures(
        json.dumps({"sha256": [entry(pkfp="00" * 32)]}).encode(), path=SIGNATURES
    )
    key = parse_pcr_public_key(PEM, path=WHERE)
    with pytest.raises(UKIFileError, match="made with another key"):
        find_signature(signatures, bytes.fromhex("ab" * 32), key, path=SIGNATURES)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"{", "is not JSON"),
        (b"[]", "is not a JSON object"),
        (b'{"sha256": {}}', "field 'sha256' is not a list"),
        (json.dumps({"sha256": [entry(pol="xyz")]}).encode(), r"sha256\[0\]: field 'pol' is not hex"),
        (json.dumps({"sha256": [entry(sig="!!")]}).encode(), r"sha256\[0\]: field 'sig' is not base64"),
        (json.dumps({"sha256": [entry(pkfp=None)]}).encode(), "field 'pkfp' is missing or not a string"),
        (json.dumps({"sha256": [entry(pcrs="11")]}).encode(), "field 'pcrs' is not a list of integers"),
    ],
)
def test_malformed_signature_files_name_the_field(document: bytes, message: str) -> None:
    with pytest.raises(UKIFileError, match=f"PCR signature file {SIGNATURES}.*{message}"):
        parse_pcr_signatures(document, path=SIGNATURES)


def test_phase_digest_is_sha256_of_the_word() -> None:
    assert boot_phase_digest("enter-machined") == hashlib.sha256(b"enter-machined").digest()


@pytest.mark.parametrize("word", ["", "a:b", "two words", "é"])
def test_bad_phase_words_are_refused(word: str) -> None:
    with pytest.raises(ValueError, match="is not a word"):
        boot_phase_digest(word)
