"""Sealing under the signed PCR 11 policy proves the policy can be satisfied now: a PCR-signing key that did
not make the signature JSON, a key the TPM does not load, a signature that does not verify each refuse the
seal (a key sealed without that proof would be a volume's key that never unseals)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from typing import TYPE_CHECKING

import anyio
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests._tools import require_tool
from tests._uki import UKI, make_uki, measure_uki_boot
from volumed.controllers.block._encryption import Location, NoUsableKeyError, SlotKey, format_encrypted
from volumed.keys import StaticKeyProvider
from volumed.keys.tpm import TPMCommandError, TPMConnection, TPMKeyProvider, UKIFileError, UKIPolicyError
from volumed.resources import EncryptionConfigSpec, PbkdfSpec
from volumed.storage.luks2 import Luks2Volume

if TYPE_CHECKING:
    from pathlib import Path

    from tests._swtpm import Swtpm

pytestmark = pytest.mark.interop


@pytest.fixture
def uki(swtpm: Swtpm, tmp_path: Path) -> UKI:
    made = make_uki(tmp_path / "uki", swtpm)
    measure_uki_boot(swtpm, made)
    return made


def _provider(swtpm: Swtpm, public_key: Path, signature: Path) -> TPMKeyProvider:
    return TPMKeyProvider(1, tcti=swtpm.tcti, pcr_public_key=public_key, pcr_signature=signature)


def _signed_by(key: rsa.RSAPrivateKey, swtpm: Swtpm, uki: UKI, workdir: Path) -> TPMKeyProvider:
    """A public key file and a signature JSON whose entry for PCR 11's value ``key`` signed (pkfp its own)."""
    [entry] = json.loads(uki.signature.read_bytes())["sha256"]
    public = key.public_key()
    pem = workdir / "key.pem"
    pem.write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    signature = key.sign(bytes.fromhex(entry["pol"]), padding.PKCS1v15(), hashes.SHA256())
    signed = dict(entry, pkfp=hashlib.sha256(der).hexdigest(), sig=base64.b64encode(signature).decode())
    (workdir / "sig.json").write_text(json.dumps({"sha256": [signed]}))
    return _provider(swtpm, pem, workdir / "sig.json")


def test_a_public_key_that_did_not_sign_is_refused(swtpm: Swtpm, uki: UKI, tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    other = tmp_path / "other.pem"
    subprocess.run(
        f"{openssl} genrsa 2048 2>/dev/null | {openssl} rsa -pubout -out {other} 2>/dev/null",
        shell=True,
        check=True,
    )
    with pytest.raises(UKIFileError, match=r"refusing to seal a key that could not be unsealed.*another key"):
        anyio.run(_provider(swtpm, other, uki.signature).new_key)


@pytest.mark.parametrize(("bits", "exponent"), [(1024, 3), (2048, 3), (4096, 65537)])
def test_a_key_the_tpm_does_not_load_is_refused(
    swtpm: Swtpm, uki: UKI, tmp_path: Path, bits: int, exponent: int
) -> None:
    """swtpm (libtpms) loads RSA keys of 1024..3072 bits with exponent 65537 only (other TPMs differ)."""
    provider = _signed_by(
        rsa.generate_private_key(public_exponent=exponent, key_size=bits), swtpm, uki, tmp_path
    )
    with pytest.raises(
        UKIFileError, match=rf"does not load the PCR signing public key .*key\.pem \({bits}-bit"
    ):
        anyio.run(provider.new_key)


def test_a_512_bit_key_is_refused(swtpm: Swtpm, uki: UKI, tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    private = subprocess.run([openssl, "genrsa", "512"], check=True, capture_output=True).stdout
    key = serialization.load_pem_private_key(private, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    with pytest.raises(UKIFileError, match=r"does not load the PCR signing public key .*\(512-bit RSA"):
        anyio.run(_signed_by(key, swtpm, uki, tmp_path).new_key)


def test_a_signature_that_does_not_verify_is_refused(swtpm: Swtpm, uki: UKI, tmp_path: Path) -> None:
    document = json.loads(uki.signature.read_bytes())
    document["sha256"][0]["sig"] = base64.b64encode(bytes(256)).decode()
    (tmp_path / "bad.json").write_text(json.dumps(document))
    with pytest.raises(UKIPolicyError, match=r"refusing to seal.*does not verify"):
        anyio.run(_provider(swtpm, uki.public_key, tmp_path / "bad.json").new_key)


def test_no_signature_for_pcr11_now_is_refused(swtpm: Swtpm, uki: UKI, tmp_path: Path) -> None:
    document = json.loads(uki.signature.read_bytes())
    document["sha256"][0]["pol"] = "00" * 32
    (tmp_path / "other-pol.json").write_text(json.dumps(document))
    with pytest.raises(UKIPolicyError, match=r"refusing to seal.*no signature in .* for this PCR 11 value"):
        anyio.run(_provider(swtpm, uki.public_key, tmp_path / "other-pol.json").new_key)


def test_a_3072_bit_key_seals_and_unseals(swtpm: Swtpm, uki: UKI, tmp_path: Path) -> None:
    provider = _signed_by(
        rsa.generate_private_key(public_exponent=65537, key_size=3072), swtpm, uki, tmp_path
    )
    new = anyio.run(provider.new_key)
    assert anyio.run(provider.get_key, new.token).reveal() == new.passphrase.reveal()


def test_an_oversized_signature_is_a_tpm_command_error(swtpm: Swtpm) -> None:
    """Below the parser's check, the connection itself refuses a signature no TPM buffer holds."""
    with TPMConnection(swtpm.tcti) as tpm, pytest.raises(TPMCommandError, match="4096-byte signature"):
        tpm.verify_signature(None, bytes(32), b"\x01" * 4096)


async def test_formatting_with_such_a_key_alone_writes_nothing(
    swtpm: Swtpm, uki: UKI, tmp_path: Path
) -> None:
    """The formatter asks for the key before it writes: with no other key the volume fails, the disk
    unchanged; with a second key it formats with that one."""
    encryption = EncryptionConfigSpec(pbkdf=PbkdfSpec(type="pbkdf2", iterations=1000), key_size_bits=256)
    other = tmp_path / "other.pem"
    other.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    wrong = SlotKey(0, "tpm", _provider(swtpm, other, uki.signature))
    image = tmp_path / "disk.img"
    with image.open("wb") as out:
        out.truncate(32 << 20)
    with pytest.raises(NoUsableKeyError, match=r"slot 0 \(tpm\): .*refusing to seal"):
        await format_encrypted(Location(str(image)), encryption, [wrong])
    assert image.read_bytes() == bytes(32 << 20)

    recovery = SlotKey(1, "static", StaticKeyProvider(slot=1, passphrase=b"recovery"))
    opened = await format_encrypted(Location(str(image)), encryption, [wrong, recovery])
    assert opened.slot == 1
    with Luks2Volume.open(str(image), read_only=True) as volume:
        volume.unlock(b"recovery", keyslot=1)
