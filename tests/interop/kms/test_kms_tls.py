"""TLS and mTLS between our KMS client and server, with a test CA generated in the test session."""

from __future__ import annotations

from typing import Any

import pytest

from volumed.keys import KeyUnavailableError
from volumed.keys.kms import KMSClientTLS, KMSKeyProvider, KMSServer, KMSServerTLS, MasterKeyRing

from .conftest import NODE_UUID, KmsPKI


async def test_tls_with_a_custom_ca(
    pki: KmsPKI, ring: MasterKeyRing, audit_log: list[dict[str, Any]]
) -> None:
    tls = KMSServerTLS(pki.server.cert, pki.server.key)
    async with KMSServer(ring, listen="127.0.0.1:0", tls=tls) as server:
        for endpoint in (f"https://127.0.0.1:{server.port}", f"https://localhost:{server.port}"):
            provider = KMSKeyProvider(
                slot=0, endpoint=endpoint, node_uuid=NODE_UUID, tls=KMSClientTLS(ca_pem=pki.ca.cert)
            )
            key = await provider.new_key()
            assert await provider.get_key(key.token) == key.passphrase
    assert all(record["result"] == "ok" for record in audit_log)


async def test_untrusted_server_certificate_is_unavailable(pki: KmsPKI, ring: MasterKeyRing) -> None:
    tls = KMSServerTLS(pki.server.cert, pki.server.key)
    async with KMSServer(ring, listen="127.0.0.1:0", tls=tls) as server:
        endpoint = f"https://127.0.0.1:{server.port}"
        # Talos' default: the system roots, which do not include the test CA.
        with pytest.raises(
            KeyUnavailableError, match=r"KMS unreachable at https://127\.0\.0\.1:\d+: Seal failed"
        ):
            await KMSKeyProvider(slot=0, endpoint=endpoint, node_uuid=NODE_UUID).new_key()
        with pytest.raises(KeyUnavailableError, match="KMS unreachable"):
            await KMSKeyProvider(
                slot=0, endpoint=endpoint, node_uuid=NODE_UUID, tls=KMSClientTLS(ca_pem=pki.other_ca.cert)
            ).new_key()


async def test_plaintext_client_cannot_talk_to_a_tls_server(pki: KmsPKI, ring: MasterKeyRing) -> None:
    tls = KMSServerTLS(pki.server.cert, pki.server.key)
    async with KMSServer(ring, listen="127.0.0.1:0", tls=tls) as server:
        with pytest.raises(KeyUnavailableError, match="KMS unreachable"):
            await KMSKeyProvider(slot=0, endpoint=f"127.0.0.1:{server.port}", node_uuid=NODE_UUID).new_key()


async def test_client_certificates_required(
    pki: KmsPKI, ring: MasterKeyRing, audit_log: list[dict[str, Any]]
) -> None:
    tls = KMSServerTLS(pki.server.cert, pki.server.key, client_ca_pem=pki.ca.cert)
    async with KMSServer(ring, listen="127.0.0.1:0", tls=tls) as server:
        endpoint = f"https://127.0.0.1:{server.port}"
        anonymous = KMSKeyProvider(
            slot=0, endpoint=endpoint, node_uuid=NODE_UUID, tls=KMSClientTLS(ca_pem=pki.ca.cert)
        )
        with pytest.raises(KeyUnavailableError, match="KMS unreachable"):
            await anonymous.new_key()
        member = KMSKeyProvider(
            slot=0,
            endpoint=endpoint,
            node_uuid=NODE_UUID,
            tls=KMSClientTLS(ca_pem=pki.ca.cert, cert_pem=pki.client.cert, key_pem=pki.client.key),
        )
        key = await member.new_key()
        assert await member.get_key(key.token) == key.passphrase
    assert [(r["operation"], r.get("client_cert")) for r in audit_log] == [
        ("seal", "node-1"),
        ("unseal", "node-1"),
    ]


def test_client_tls_repr_hides_the_private_key(pki: KmsPKI) -> None:
    tls = KMSClientTLS(ca_pem=pki.ca.cert, cert_pem=pki.client.cert, key_pem=pki.client.key)
    assert "PRIVATE KEY" not in repr(tls)
    assert "PRIVATE KEY" not in repr(KMSServerTLS(pki.server.cert, pki.server.key))
