"""No key material in logs, exception texts or reprs, on the happy path and on every failure path."""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any

import pytest

from volumed.keys import (
    DiskSalt,
    KeyProviderError,
    LockedToStateKeyProvider,
    NodeIDKeyProvider,
    StaticKeyProvider,
    with_time_limit,
)
from volumed.keys.kms import KMSClient, KMSKeyProvider, KMSServer, MasterKeyRing

from .conftest import NODE_UUID

if TYPE_CHECKING:
    from pathlib import Path


def _forms(secret: bytes) -> list[str]:
    """The ways a secret could leak into text."""
    forms = [secret.hex(), base64.b64encode(secret).decode(), repr(secret)]
    if secret.isascii() and len(secret) >= 8:
        forms.append(secret.decode())
    return forms


async def test_no_secret_reaches_logs_or_errors(
    caplog: pytest.LogCaptureFixture,
    audit_log: list[dict[str, Any]],
    ring: MasterKeyRing,
    kms_server: KMSServer,
    endpoint: str,
    tmp_path: Path,
) -> None:
    # Everything of ours down to DEBUG, other libraries at WARNING: grpc's Cython DEBUG logging under pytest's
    # log capture crashed the interpreter (a segfault in about 1 run in 5), so grpc keeps its default level.
    caplog.set_level(logging.WARNING)
    caplog.set_level(logging.DEBUG, logger="volumed")
    texts: list[str] = []
    secrets: list[bytes] = [key.key for key in ring.keys]

    static_secret = b"static-test-secret-4711"
    salt = DiskSalt.generate()
    secrets += [static_secret, salt.reveal()]
    providers = [
        StaticKeyProvider(slot=0, passphrase=static_secret),
        LockedToStateKeyProvider(NodeIDKeyProvider(slot=1, node_uuid=NODE_UUID, volume_id="u-x"), salt),
        LockedToStateKeyProvider(KMSKeyProvider(slot=2, endpoint=endpoint, node_uuid=NODE_UUID), salt),
        KMSKeyProvider(slot=3, endpoint=endpoint, node_uuid=NODE_UUID),
    ]
    for provider in providers:
        limited = with_time_limit(provider, 5)
        key = await limited.new_key()
        secrets.append(key.passphrase.reveal())
        if key.token is not None:
            sealed = base64.b64decode(key.token["UserData"]["sealedData"])
            secrets.append(sealed)
            secrets.append(
                base64.b64decode(
                    (
                        await KMSKeyProvider(slot=3, endpoint=endpoint, node_uuid=NODE_UUID).get_key(
                            key.token
                        )
                    ).reveal()
                )
            )
        got = await limited.get_key(key.token)
        texts += [repr(provider), repr(limited), repr(key), str(key), repr(got), f"{got}"]

        # failure paths: wrong node, tampered blob, server gone
        if key.token is not None:
            wrong = KMSKeyProvider(
                slot=2, endpoint=endpoint, node_uuid="aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
            )
            with pytest.raises(KeyProviderError) as info:
                await wrong.get_key(key.token)
            texts.append(str(info.value))
            tampered = dict(key.token)
            tampered["UserData"] = {
                "sealedData": base64.b64encode(sealed[:-1] + bytes([sealed[-1] ^ 1])).decode()
            }
            with pytest.raises(KeyProviderError) as info:
                await provider.get_key(tampered)
            texts.append(str(info.value))

    async with KMSClient(endpoint) as client:
        wrong_size = b"W" * 31
        secrets.append(wrong_size)
        with pytest.raises(KeyProviderError) as info:
            await client.seal(NODE_UUID, wrong_size)
        texts.append(str(info.value))

    kms_server.service.reload(ring.rotated())
    secrets += [key.key for key in kms_server.service.ring.keys]
    await kms_server.stop()
    with pytest.raises(KeyProviderError) as info:
        await KMSKeyProvider(slot=3, endpoint=endpoint, node_uuid=NODE_UUID).new_key()
    texts.append(str(info.value))

    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record) for record in audit_log]
    texts += [repr(ring), repr(kms_server.service.ring)]
    assert audit_log, "the audit log recorded nothing"
    haystack = "\n".join(texts)
    for secret in secrets:
        for form in _forms(secret):
            assert form not in haystack, "a secret leaked into logs, errors or reprs"
