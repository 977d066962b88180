"""Checks of the KMS server's TLS identity before gRPC sees it: gRPC says only "Failed to bind to address"."""

from __future__ import annotations

from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

_PRIVATE_KEY_MARK: Final = b"PRIVATE KEY-----"
_CERTIFICATE_MARK: Final = b"-----BEGIN CERTIFICATE-----"


class KMSTLSError(ValueError):
    """The server's TLS certificate, key or client CA is unusable; the message names which one (its file,
    when it came from one) and the problem, never the key's bytes."""


def _certificates(pem: bytes, name: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        hint = (
            " (it holds a private key: are the certificate and key swapped?)"
            if _PRIVATE_KEY_MARK in pem
            else ""
        )
        raise KMSTLSError(f"{name}: no PEM certificate in it{hint}") from None


def check_server_tls(
    cert_pem: bytes,
    key_pem: bytes,
    client_ca_pem: bytes | None,
    *,
    cert_name: str = "TLS certificate",
    key_name: str = "TLS key",
    client_ca_name: str = "client CA",
) -> None:
    """Refuse a certificate chain, private key or client CA that gRPC could not use, or a key that is not the
    certificate's. Blocking (parses PEM); cheap.

    Args:
        cert_name, key_name, client_ca_name: how to name each in an error, e.g. ``TLS key /etc/kms/key.pem``.

    Raises:
        KMSTLSError: naming the certificate, key or CA and what is wrong with it.
    """
    chain = _certificates(cert_pem, cert_name)
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise KMSTLSError(
            f"{key_name} is encrypted with a passphrase; the server needs it unencrypted (mode 0600)"
        ) from None
    except UnsupportedAlgorithm:
        raise KMSTLSError(f"{key_name}: unsupported private key type") from None
    except ValueError:
        hint = (
            " (it holds a certificate: are the certificate and key swapped?)"
            if _CERTIFICATE_MARK in key_pem
            else ""
        )
        raise KMSTLSError(f"{key_name}: not a PEM private key{hint}") from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != chain[0].public_key().public_bytes(*spki):
        raise KMSTLSError(f"{key_name} is not the key of {cert_name} (of its first certificate)")
    if client_ca_pem is not None:
        _certificates(client_ca_pem, client_ca_name)
