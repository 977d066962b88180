"""KMS client and server over real gRPC on loopback: round trips, refusals, rotation, unreachable servers."""

from __future__ import annotations

import base64
import time
from typing import Any

import anyio
import pytest

from volumed.keys import (
    DiskSalt,
    InvalidTokenError,
    KeyRejectedError,
    KeyTimeoutError,
    KeyUnavailableError,
    LockedToStateKeyProvider,
    Passphrase,
    with_time_limit,
)
from volumed.keys.kms import (
    KMSClient,
    KMSKeyProvider,
    KMSServer,
    MasterKeyRing,
    blob_key_id,
)

from .conftest import NODE_UUID


async def test_seal_unseal_round_trip(endpoint: str, audit_log: list[dict[str, Any]]) -> None:
    provider = KMSKeyProvider(slot=2, endpoint=endpoint, node_uuid=NODE_UUID)
    assert (provider.slot, provider.kind) == (2, "kms")
    key = await provider.new_key()
    secret = key.passphrase.reveal()
    assert len(secret) == 44
    assert len(base64.b64decode(secret, validate=True)) == 32
    assert key.token is not None
    assert list(key.token) == ["type", "keyslots", "UserData"]
    assert key.token["type"] == "sideroKMS"
    assert key.token["keyslots"] == []
    assert await provider.get_key(key.token) == key.passphrase
    assert [(r["operation"], r["result"], r["node_uuid"]) for r in audit_log] == [
        ("seal", "ok", NODE_UUID),
        ("unseal", "ok", NODE_UUID),
    ]


async def test_every_new_key_is_fresh(endpoint: str) -> None:
    provider = KMSKeyProvider(slot=0, endpoint=endpoint, node_uuid=NODE_UUID)
    first, second = await provider.new_key(), await provider.new_key()
    assert first.passphrase != second.passphrase
    assert first.token != second.token


async def test_wrong_node_uuid_is_rejected(endpoint: str, audit_log: list[dict[str, Any]]) -> None:
    key = await KMSKeyProvider(slot=1, endpoint=endpoint, node_uuid=NODE_UUID).new_key()
    other = KMSKeyProvider(slot=1, endpoint=endpoint, node_uuid="87654321-4321-8765-4321-876543218765")
    with pytest.raises(KeyRejectedError) as info:
        await other.get_key(key.token)
    assert str(info.value) == (
        f"kms key for slot 1: KMS at {endpoint} refused Unseal: PERMISSION_DENIED: "
        "sealed data does not belong to this node or was altered"
    )
    refused = audit_log[-1]
    assert (refused["operation"], refused["result"], refused["code"]) == (
        "unseal",
        "refused",
        "PERMISSION_DENIED",
    )
    assert refused["node_uuid"] == "87654321-4321-8765-4321-876543218765"


async def test_missing_or_foreign_token(endpoint: str) -> None:
    provider = KMSKeyProvider(slot=4, endpoint=endpoint, node_uuid=NODE_UUID)
    with pytest.raises(InvalidTokenError, match=r"^slot 4: no LUKS2 token at token id 4"):
        await provider.get_key(None)
    with pytest.raises(InvalidTokenError, match="token type is 'talos-tpm2'"):
        await provider.get_key({"type": "talos-tpm2", "keyslots": [], "UserData": {}})


async def test_seal_accepts_exactly_32_bytes(
    endpoint: str, ring: MasterKeyRing, audit_log: list[dict[str, Any]]
) -> None:
    async with KMSClient(endpoint) as client:
        for size in (0, 16, 31, 33, 64):
            with pytest.raises(
                KeyRejectedError, match=f"INVALID_ARGUMENT: data must be exactly 32 bytes, got {size}"
            ):
                await client.seal(NODE_UUID, b"k" * size)
        blob = await client.seal(NODE_UUID, b"k" * 32)
    assert len(blob) == 2 + len(ring.primary_id) + 12 + 32 + 16
    assert [r["code"] for r in audit_log if r["result"] == "refused"] == ["INVALID_ARGUMENT"] * 5


async def test_bad_requests_get_status_codes(endpoint: str) -> None:
    async with KMSClient(endpoint) as client:
        blob = await client.seal(NODE_UUID, bytes(32))
        with pytest.raises(KeyRejectedError, match="INVALID_ARGUMENT: node_uuid is empty"):
            await client.seal("", bytes(32))
        with pytest.raises(KeyRejectedError, match="INVALID_ARGUMENT: node_uuid is empty"):
            await client.unseal("", blob)
        with pytest.raises(KeyRejectedError, match="INVALID_ARGUMENT: sealed data is not a version-1 blob"):
            await client.unseal(NODE_UUID, b"\x00" * 64)
        with pytest.raises(KeyRejectedError, match="INVALID_ARGUMENT: sealed data is truncated"):
            await client.unseal(NODE_UUID, blob[:20])
        with pytest.raises(KeyRejectedError, match="INVALID_ARGUMENT: sealed data is empty or too large"):
            await client.unseal(NODE_UUID, bytes(5000))
        tampered = blob[:-1] + bytes([blob[-1] ^ 0x80])
        with pytest.raises(KeyRejectedError, match="PERMISSION_DENIED"):
            await client.unseal(NODE_UUID, tampered)
        assert await client.unseal(NODE_UUID, blob) == bytes(32)


async def test_master_key_rotation(kms_server: KMSServer, endpoint: str, ring: MasterKeyRing) -> None:
    provider = KMSKeyProvider(slot=0, endpoint=endpoint, node_uuid=NODE_UUID)
    old = await provider.new_key()
    rotated = ring.rotated()
    kms_server.service.reload(rotated)
    new = await provider.new_key()
    assert old.token is not None
    assert new.token is not None

    def key_id(token: dict[str, Any]) -> str:
        return blob_key_id(base64.b64decode(token["UserData"]["sealedData"]))

    assert key_id(old.token) == ring.primary_id
    assert key_id(new.token) == rotated.primary_id != ring.primary_id
    assert await provider.get_key(old.token) == old.passphrase  # old blobs still unseal
    assert await provider.get_key(new.token) == new.passphrase
    # Dropping the old key from the file breaks only the old blobs, with a clear status.
    kms_server.service.reload(MasterKeyRing((rotated.primary,), rotated.primary_id))
    with pytest.raises(
        KeyRejectedError, match=f"FAILED_PRECONDITION: sealed with master key '{ring.primary_id}'"
    ):
        await provider.get_key(old.token)
    assert await provider.get_key(new.token) == new.passphrase


async def test_lock_to_state_seals_the_unsalted_key(endpoint: str) -> None:
    salt = DiskSalt.generate()
    inner = KMSKeyProvider(slot=3, endpoint=endpoint, node_uuid=NODE_UUID)
    locked = LockedToStateKeyProvider(inner, salt)
    key = await locked.new_key()
    unsalted = await inner.get_key(key.token)
    assert key.passphrase == Passphrase(unsalted.reveal() + salt.reveal())
    assert await locked.get_key(key.token) == key.passphrase


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_server_down_is_a_clear_error_within_the_time_limit() -> None:
    endpoint = f"127.0.0.1:{_free_port()}"
    provider = with_time_limit(KMSKeyProvider(slot=1, endpoint=endpoint, node_uuid=NODE_UUID), 20)
    started = time.monotonic()
    with pytest.raises(KeyUnavailableError) as info:
        await provider.new_key()
    assert time.monotonic() - started < 5
    assert not isinstance(info.value, KeyTimeoutError)
    assert str(info.value).startswith(
        f"kms key for slot 1: KMS unreachable at grpc://{endpoint}: Seal failed: UNAVAILABLE"
    )


async def test_stopped_server_is_unreachable(ring: MasterKeyRing) -> None:
    async with KMSServer(ring, listen="127.0.0.1:0") as server:
        endpoint = f"127.0.0.1:{server.port}"
        provider = KMSKeyProvider(slot=0, endpoint=endpoint, node_uuid=NODE_UUID)
        key = await provider.new_key()
    with pytest.raises(KeyUnavailableError, match="KMS unreachable"):
        await provider.get_key(key.token)


async def _silent_listener(task_status: anyio.abc.TaskStatus[int]) -> None:
    """Accepts TCP connections and never speaks: a KMS that hangs."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def hold(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await anyio.sleep_forever()

    async with listener:
        task_status.started(port)
        await listener.serve(hold)


async def test_hanging_server_hits_the_call_deadline() -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(_silent_listener)
        provider = KMSKeyProvider(slot=6, endpoint=f"127.0.0.1:{port}", node_uuid=NODE_UUID, call_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(
            KeyTimeoutError,
            match=r"^kms key for slot 6: KMS at grpc://127\.0\.0\.1:\d+: Seal got no answer within 0\.5 s$",
        ):
            await provider.new_key()
        assert time.monotonic() - started < 3
        # the provider's own time limit wins when it is shorter than the per-call deadline
        limited = with_time_limit(
            KMSKeyProvider(slot=6, endpoint=f"127.0.0.1:{port}", node_uuid=NODE_UUID), 0.3
        )
        with pytest.raises(
            KeyTimeoutError, match=r"^kms key for slot 6: making a new key took longer than 0\.3 s$"
        ):
            await limited.new_key()
        tg.cancel_scope.cancel()


async def test_cancellation_leaves_no_call_behind(endpoint: str) -> None:
    provider = KMSKeyProvider(slot=0, endpoint=endpoint, node_uuid=NODE_UUID)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await provider.new_key()
    assert scope.cancelled_caught
    key = await provider.new_key()  # the provider is still usable
    assert await provider.get_key(key.token) == key.passphrase


def test_configuration_errors_are_immediate() -> None:
    with pytest.raises(ValueError, match="has an invalid port"):
        KMSKeyProvider(slot=0, endpoint="kms:abc", node_uuid=NODE_UUID)
    from volumed.keys.kms import KMSClientTLS

    with pytest.raises(ValueError, match="is plaintext: TLS settings do not apply"):
        KMSKeyProvider(slot=0, endpoint="kms:4050", node_uuid=NODE_UUID, tls=KMSClientTLS(ca_pem=b"x"))
    with pytest.raises(ValueError, match="needs both cert_pem and key_pem"):
        KMSClientTLS(cert_pem=b"x")


async def test_unknown_node_uuid_is_unavailable(endpoint: str) -> None:
    provider = KMSKeyProvider(slot=0, endpoint=endpoint, node_uuid="")
    with pytest.raises(KeyUnavailableError, match="the node UUID is not known yet"):
        await provider.new_key()
