"""What `volumed kms serve` and the server say about a bad TLS identity, an unprotected master key file and a
malformed request: the file and the problem, not "Failed to bind to address" or UNKNOWN."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
import pytest
from click.testing import CliRunner

from volumed.cli import volumed
from volumed.keys.kms import (
    KMSServer,
    KMSServerTLS,
    KMSTLSError,
    MasterKeyRing,
    save_master_key_file,
)

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import KmsPKI


def _serve(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(volumed, ["kms", "serve", "--listen", "127.0.0.1:0", *args])
    return result.exit_code, result.output


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.yaml"
    save_master_key_file(path, MasterKeyRing.generate(), exclusive=True)
    return path


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    ("cert", "key", "message"),
    [
        ("junk", "server-key", "TLS certificate {dir}/cert.pem: no PEM certificate in it"),
        ("server-key", "server-key", "TLS certificate {dir}/cert.pem: no PEM certificate in it (it holds a"),
        ("server", "junk", "TLS key {dir}/key.pem: not a PEM private key"),
        ("server", "server", "TLS key {dir}/key.pem: not a PEM private key (it holds a certificate"),
        ("server", "client-key", "TLS key {dir}/key.pem is not the key of TLS certificate {dir}/cert.pem"),
        ("server", "encrypted-key", "TLS key {dir}/key.pem is encrypted with a passphrase"),
    ],
)
def test_a_bad_tls_certificate_or_key_is_named(
    tmp_path: Path, key_file: Path, pki: KmsPKI, cert: str, key: str, message: str
) -> None:
    from cryptography.hazmat.primitives import serialization

    encrypted = serialization.load_pem_private_key(pki.server.key, None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    pems = {
        "junk": b"not a certificate\n",
        "server": pki.server.cert,
        "server-key": pki.server.key,
        "client-key": pki.client.key,
        "encrypted-key": encrypted,
    }
    code, output = _serve(
        "--key-file",
        str(key_file),
        "--tls-cert",
        _write(tmp_path / "cert.pem", pems[cert]),
        "--tls-key",
        _write(tmp_path / "key.pem", pems[key]),
    )
    assert code == 1
    assert f"Error: {message.replace('{dir}', str(tmp_path))}" in output
    assert "Failed to bind" not in output
    assert "cannot listen" not in output
    assert pki.server.key.decode() not in output


def test_a_bad_client_ca_is_named(tmp_path: Path, key_file: Path, pki: KmsPKI) -> None:
    code, output = _serve(
        "--key-file",
        str(key_file),
        "--tls-cert",
        _write(tmp_path / "cert.pem", pki.server.cert),
        "--tls-key",
        _write(tmp_path / "key.pem", pki.server.key),
        "--client-ca",
        _write(tmp_path / "ca.pem", b"garbage"),
    )
    assert code == 1
    assert f"Error: client CA {tmp_path}/ca.pem: no PEM certificate in it" in output


async def test_the_server_api_checks_the_tls_pair_too(pki: KmsPKI, ring: MasterKeyRing) -> None:
    server = KMSServer(ring, listen="127.0.0.1:0", tls=KMSServerTLS(pki.server.cert, pki.client.key))
    with pytest.raises(KMSTLSError, match="TLS key is not the key of TLS certificate"):
        await server.start()
    await server.stop()


def test_a_master_key_file_others_can_read_is_refused(key_file: Path) -> None:
    """Before, `serve` accepted a 0644 file silently and served (so this test hung until pytest's timeout)."""
    os.chmod(key_file, 0o644)
    code, output = _serve("--key-file", str(key_file))
    assert code == 1
    assert (
        f"Error: master key file {key_file}: permissions 0644 are too open: it must not be readable "
        f"or writable by group or others (chmod 600 {key_file})"
    ) in output


async def test_a_malformed_request_is_invalid_argument_and_audited(
    kms_server: KMSServer, audit_log: list[dict[str, Any]]
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{kms_server.port}") as channel:
        for method in ("Seal", "Unseal"):
            call = channel.unary_unary(
                f"/sidero.kms.KMSService/{method}",
                request_serializer=lambda raw: raw,
                response_deserializer=lambda raw: raw,
            )
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call(b"\xff\xff\xff\xff garbage")
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert info.value.details() == "malformed request: not a sidero.kms.Request message"
    refused = [r for r in audit_log if r.get("result") == "refused"]
    assert [(r["event"], r["operation"], r["code"], r["node_uuid"]) for r in refused] == [
        ("kms.seal", "seal", "INVALID_ARGUMENT", ""),
        ("kms.unseal", "unseal", "INVALID_ARGUMENT", ""),
    ]
    assert all(r["reason"] == "malformed request: not a sidero.kms.Request message" for r in refused)
    assert all(r["peer"].startswith("ipv4:127.0.0.1:") for r in refused)
    assert all(r["log_level"] == "warning" for r in refused)
