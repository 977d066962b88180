"""The two files a signed UKI gives the initrd: the PCR-signing public key and systemd's PCR signature JSON.

systemd-stub copies them from the UKI's ``.pcrpkey`` and ``.pcrsig`` sections to ``/.extra``; Talos reads them
from there. Parsing is pure; :func:`load_pcr_public_key` and :func:`load_pcr_signatures` read the files
(blocking, called from the TPM worker thread). Errors name the file and the field, never quote secrets (there
are none here: both files are public).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .._bounded_read import read_bounded
from ._errors import UKIFileError

DEFAULT_PCR_PUBLIC_KEY: Final = Path("/.extra/tpm2-pcr-public-key.pem")
"""Where systemd-stub puts the UKI's ``.pcrpkey`` section (Talos' ``constants.PCRPublicKey``)."""

DEFAULT_PCR_SIGNATURE: Final = Path("/.extra/tpm2-pcr-signature.json")
"""Where systemd-stub puts the UKI's ``.pcrsig`` section (Talos' ``constants.PCRSignatureJSON``)."""

UKI_PCR: Final = 11
"""The PCR systemd-stub measures the UKI's sections into, and the boot phases extend."""

_TPM_ALG_RSA = 0x0001
_TPM_ALG_SHA256 = 0x000B
_TPM_ALG_NULL = 0x0010
_RSA_KEY_ATTRIBUTES = (1 << 6) | (1 << 17) | (1 << 18)
"""userWithAuth | decrypt | sign: the attributes of Talos' ``RSAPubKeyTemplate`` (part of the key's name)."""

MAX_RSA_BYTES: Final = 512
"""``TPM2B_PUBLIC_KEY_RSA`` holds at most 512 bytes (MAX_RSA_KEY_BYTES): no TPM takes a larger key or
signature."""

MAX_FILE_SIZE: Final = 1 << 20
"""Bytes read from either file at most: a PEM key is under 1 KiB and systemd's signature JSON a few KiB (one
entry per boot phase); anything larger is not one of them."""


@final
@dataclass(frozen=True, slots=True)
class UKIFiles:
    """Where the PCR-signing public key and the PCR signatures are read from (defaults: systemd-stub's)."""

    public_key: Path = field(default=DEFAULT_PCR_PUBLIC_KEY)
    signature: Path = field(default=DEFAULT_PCR_SIGNATURE)


DEFAULT_UKI_FILES: Final = UKIFiles()
"""systemd-stub's places for both files."""


@final
@dataclass(frozen=True, slots=True)
class PCRSigningKey:
    """The UKI's PCR-signing RSA public key as the TPM sees it.

    Attributes:
        bits: the modulus' size in bits.
        exponent: the public exponent.
        public_area: marshalled ``TPM2B_PUBLIC`` for TPM2_LoadExternal (Talos' template: RSA, SHA-256 name,
            userWithAuth|decrypt|sign, no scheme, the exponent written out).
        name: the key's TPM name (``nameAlg || SHA-256(TPMT_PUBLIC)``), what PolicyAuthorize binds to.
        fingerprint: hex SHA-256 of the PKCS#1 DER public key, systemd's ``pkfp``.
    """

    bits: int
    exponent: int
    public_area: bytes
    name: bytes
    fingerprint: str


@final
@dataclass(frozen=True, slots=True)
class PCRSignature:
    """One entry of the signature JSON's ``sha256`` list: a signed PCR policy digest (one per boot phase)."""

    pcrs: tuple[int, ...]
    fingerprint: str
    policy_digest: bytes
    signature: bytes


def parse_pcr_public_key(pem: bytes, *, path: Path) -> PCRSigningKey:
    """The key in a PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo) file, which must be RSA.

    Raises:
        UKIFileError: not PEM, not a public key, not RSA, or larger than a TPM holds (naming ``path``).
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise UKIFileError(f"PCR signing public key {path} is not a PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise UKIFileError(f"PCR signing public key {path} is not an RSA key")
    numbers = key.public_numbers()
    modulus = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    if len(modulus) > MAX_RSA_BYTES:
        raise UKIFileError(
            f"PCR signing public key {path} is a {numbers.n.bit_length()}-bit RSA key: a TPM takes at most "
            f"{MAX_RSA_BYTES * 8} bits"
        )
    public = (
        struct.pack(">HHIH", _TPM_ALG_RSA, _TPM_ALG_SHA256, _RSA_KEY_ATTRIBUTES, 0)
        + struct.pack(">HHHI", _TPM_ALG_NULL, _TPM_ALG_NULL, numbers.n.bit_length(), numbers.e)
        + struct.pack(">H", len(modulus))
        + modulus
    )
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return PCRSigningKey(
        bits=numbers.n.bit_length(),
        exponent=numbers.e,
        public_area=struct.pack(">H", len(public)) + public,
        name=struct.pack(">H", _TPM_ALG_SHA256) + hashlib.sha256(public).digest(),
        fingerprint=hashlib.sha256(der).hexdigest(),
    )


def parse_pcr_signatures(data: bytes, *, path: Path) -> tuple[PCRSignature, ...]:
    """The ``sha256`` entries of systemd's PCR signature JSON (other banks are ignored, as Talos does).

    Raises:
        UKIFileError: not JSON, or an entry with a missing or malformed field (naming ``path`` and the field).
    """
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise UKIFileError(f"PCR signature file {path} is not JSON") from None
    except RecursionError:
        raise UKIFileError(f"PCR signature file {path} nests too deeply to be a PCR signature file") from None
    if not isinstance(document, dict):
        raise UKIFileError(f"PCR signature file {path} is not a JSON object")
    entries = document.get("sha256")
    if entries is None:  # Go: `json:"sha256,omitempty"`, and null
        entries = []
    if not isinstance(entries, list):
        raise UKIFileError(f"PCR signature file {path}: field 'sha256' is not a list")
    return tuple(_signature(entry, f"{path}: sha256[{index}]") for index, entry in enumerate(entries))


def _signature(entry: Any, where: str) -> PCRSignature:
    if not isinstance(entry, dict):
        raise UKIFileError(f"PCR signature file {where} is not an object")

    def text(name: str) -> str:
        value = entry.get(name)
        if not isinstance(value, str):
            raise UKIFileError(f"PCR signature file {where}: field {name!r} is missing or not a string")
        return value

    pcrs = entry.get("pcrs")
    if not isinstance(pcrs, list) or not all(isinstance(p, int) and not isinstance(p, bool) for p in pcrs):
        raise UKIFileError(f"PCR signature file {where}: field 'pcrs' is not a list of integers")
    try:
        policy_digest = bytes.fromhex(text("pol"))
    except ValueError:
        raise UKIFileError(f"PCR signature file {where}: field 'pol' is not hex") from None
    try:
        signature = base64.b64decode(text("sig"), validate=True)
    except binascii.Error:
        raise UKIFileError(f"PCR signature file {where}: field 'sig' is not base64") from None
    if len(signature) > MAX_RSA_BYTES:
        raise UKIFileError(
            f"PCR signature file {where}: field 'sig' is {len(signature)} bytes, more than an RSA "
            f"signature a TPM can check ({MAX_RSA_BYTES})"
        )
    return PCRSignature(
        pcrs=tuple(pcrs), fingerprint=text("pkfp").lower(), policy_digest=policy_digest, signature=signature
    )


def find_signature(
    signatures: tuple[PCRSignature, ...], policy_digest: bytes, key: PCRSigningKey, *, path: Path
) -> PCRSignature | None:
    """The first entry whose ``pol`` is ``policy_digest``, as Talos picks it; None when none is.

    Raises:
        UKIFileError: that entry was made with another key than ``key`` (its ``pkfp`` differs).
    """
    for entry in signatures:
        if entry.policy_digest == policy_digest:
            if entry.fingerprint != key.fingerprint:
                raise UKIFileError(
                    f"PCR signature file {path}: the signature for this PCR 11 value was made with another "
                    f"key (pkfp {entry.fingerprint}, the public key's fingerprint is {key.fingerprint})"
                )
            return entry
    return None


def load_pcr_public_key(path: Path) -> PCRSigningKey:
    """Read and parse the PCR-signing public key (blocking).

    Raises:
        UKIFileError: missing (the node did not boot a signed UKI), unreadable or malformed.
    """
    return parse_pcr_public_key(_read(path, "PCR signing public key"), path=path)


def load_pcr_signatures(path: Path) -> tuple[PCRSignature, ...]:
    """Read and parse the PCR signature JSON (blocking).

    Raises:
        UKIFileError: missing, unreadable or malformed.
    """
    return parse_pcr_signatures(_read(path, "PCR signature file"), path=path)


def _read(path: Path, what: str) -> bytes:
    """The file's bytes if it is a regular file of at most :data:`MAX_FILE_SIZE` bytes. Opened non-blocking
    so that a FIFO put in its place is refused instead of blocking the TPM worker thread (and the TPM lock);
    looked at first so that a device node is not even opened."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise UKIFileError(f"{what} {path} is not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise UKIFileError(
            f"{what} {path} is missing: the node did not boot a signed UKI (failed to read {what.lower()})"
        ) from None
    except OSError as exc:
        raise UKIFileError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UKIFileError(f"{what} {path} is not a regular file")
        if info.st_size > MAX_FILE_SIZE:
            raise UKIFileError(
                f"{what} {path} is {info.st_size} bytes, larger than such a file (limit {MAX_FILE_SIZE})"
            )
        data = read_bounded(fd, limit=MAX_FILE_SIZE + 1)
        if len(data) > MAX_FILE_SIZE:
            raise UKIFileError(f"{what} {path} is larger than such a file (limit {MAX_FILE_SIZE} bytes)")
        return data
    except OSError as exc:
        raise UKIFileError(f"cannot read {what} {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
