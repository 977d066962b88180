"""A real gRPC KMS server (ours, in-process on a loopback port) and a test CA made with `cryptography`."""

from __future__ import annotations

import datetime
import ipaddress
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from volumed.keys.kms import KMSServer, MasterKeyRing

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

NODE_UUID = "12345678-1234-5678-1234-567812345678"


@dataclass(frozen=True)
class Pem:
    cert: bytes
    key: bytes


@dataclass(frozen=True)
class KmsPKI:
    ca: Pem
    server: Pem
    client: Pem
    other_ca: Pem


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _issue(
    name: str,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    san: list[x509.GeneralName] | None = None,
    usage: x509.ObjectIdentifier | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer if issuer is not None else (subject, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _pem(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pem:
    return Pem(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


@pytest.fixture(scope="session")
def pki() -> KmsPKI:
    ca_cert, ca_key = _issue("volumed test CA", None, ca=True)
    server_cert, server_key = _issue(
        "localhost",
        (ca_cert.subject, ca_key),
        san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
    )
    client_cert, client_key = _issue(
        "node-1", (ca_cert.subject, ca_key), usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    other_cert, other_key = _issue("someone else's CA", None, ca=True)
    return KmsPKI(
        ca=_pem(ca_cert, ca_key),
        server=_pem(server_cert, server_key),
        client=_pem(client_cert, client_key),
        other_ca=_pem(other_cert, other_key),
    )


@pytest.fixture(autouse=True)
def _grpc_logs_at_warning() -> Iterator[None]:
    """grpc's Cython DEBUG log records, captured by pytest, crashed the interpreter now and then (segfault);
    keep grpc at WARNING here even when another test left the root logger at DEBUG."""
    grpc_logger = logging.getLogger("grpc")
    saved = grpc_logger.level
    grpc_logger.setLevel(logging.WARNING)
    yield
    grpc_logger.setLevel(saved)


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """`volumed kms serve` configures structlog for its process; CliRunner runs it in ours."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def ring() -> MasterKeyRing:
    return MasterKeyRing.generate()


@pytest.fixture
def audit_log() -> Iterator[list[dict[str, Any]]]:
    """Every structlog record emitted during the test (the server's audit log among them)."""
    with structlog.testing.capture_logs() as records:
        yield records


@pytest.fixture
async def kms_server(ring: MasterKeyRing, audit_log: list[dict[str, Any]]) -> AsyncIterator[KMSServer]:
    async with KMSServer(ring, listen="127.0.0.1:0") as server:
        yield server


@pytest.fixture
def endpoint(kms_server: KMSServer) -> str:
    return f"grpc://127.0.0.1:{kms_server.port}"
