"""The KMS client: Seal and Unseal over gRPC (grpc.aio), with Talos' endpoint rules and per-call limit."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, final

import anyio
import anyio.lowlevel
import grpc
import grpc.aio

from .._errors import KeyProviderError, KeyRejectedError, KeyTimeoutError, KeyUnavailableError
from . import kms_pb2
from ._endpoint import KMSEndpoint

if TYPE_CHECKING:
    from types import TracebackType

SEAL_METHOD: Final = "/sidero.kms.KMSService/Seal"
UNSEAL_METHOD: Final = "/sidero.kms.KMSService/Unseal"

CALL_TIMEOUT = 10.0
"""Seconds per Seal/Unseal call, as a Talos node allows."""

_REJECTED = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
_SYSTEM_CA_FILES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


@final
@dataclass(frozen=True, slots=True)
class KMSClientTLS:
    """TLS settings beyond Talos' defaults, for talking to our own KMS server.

    Attributes:
        ca_pem: trust these CA certificates instead of the system roots.
        cert_pem: client certificate chain, for a server that requires client certificates (mTLS).
        key_pem: the client certificate's private key (never shown in a repr).
        server_name: the name to verify in the server certificate, when it differs from the endpoint host.
    """

    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = field(default=None, repr=False)
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.cert_pem is None) != (self.key_pem is None):
            raise ValueError("a KMS client certificate needs both cert_pem and key_pem")


@final
class KMSClient:
    """One gRPC channel to a KMS; use as ``async with KMSClient(endpoint) as client``.

    Errors are classified for the key resolver: no answer (refused, DNS, TLS handshake, server error) is
    :class:`~volumed.keys.KeyUnavailableError` ("KMS unreachable"), the deadline is
    :class:`~volumed.keys.KeyTimeoutError`, an answer that refuses (bad argument, wrong node, permission) is
    :class:`~volumed.keys.KeyRejectedError`. Messages name the endpoint and the call, never the data.

    Args:
        endpoint: as configured (``host:port``, ``grpc://host:port``, ``https://host[:port]``).
        tls: CA, client certificate and server name overrides; only valid with a TLS endpoint.
        call_timeout: deadline of each call in seconds.
    """

    __slots__ = ("_call_timeout", "_channel", "_endpoint", "_tls")

    def __init__(
        self,
        endpoint: str | KMSEndpoint,
        *,
        tls: KMSClientTLS | None = None,
        call_timeout: float = CALL_TIMEOUT,
    ) -> None:
        self._endpoint = endpoint if isinstance(endpoint, KMSEndpoint) else KMSEndpoint.parse(endpoint)
        if tls is not None and not self._endpoint.tls:
            raise ValueError(f"KMS endpoint {self._endpoint} is plaintext: TLS settings do not apply")
        if call_timeout <= 0:
            raise ValueError(f"call timeout must be positive, got {call_timeout}")
        self._tls = tls
        self._call_timeout = call_timeout
        self._channel: grpc.aio.Channel | None = None

    @property
    def endpoint(self) -> KMSEndpoint:
        """Where this client dials."""
        return self._endpoint

    async def __aenter__(self) -> KMSClient:
        if self._channel is None:
            self._channel = await self._open_channel()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the channel; idempotent."""
        channel, self._channel = self._channel, None
        if channel is not None:
            with anyio.CancelScope(shield=True):
                await channel.close(None)

    async def seal(self, node_uuid: str, data: bytes) -> bytes:
        """Seal ``data`` (a 32-byte key) for the node; returns the opaque blob to keep in the token."""
        return await self._call(SEAL_METHOD, "Seal", node_uuid, data)

    async def unseal(self, node_uuid: str, blob: bytes) -> bytes:
        """Recover the data of a blob made by :meth:`seal` for the same node."""
        return await self._call(UNSEAL_METHOD, "Unseal", node_uuid, blob)

    async def _call(self, method: str, name: str, node_uuid: str, data: bytes) -> bytes:
        if self._channel is None:
            raise RuntimeError("KMSClient used outside `async with`")
        call = self._channel.unary_unary(
            method,
            request_serializer=kms_pb2.Request.SerializeToString,
            response_deserializer=kms_pb2.Response.FromString,
        )
        request = kms_pb2.Request(node_uuid=node_uuid, data=data)
        try:
            response = await call(request, timeout=self._call_timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._classify(name, exc) from None
        except asyncio.CancelledError:
            # grpc.aio re-raises a cancellation without anyio's marker, so an enclosing cancel scope would not
            # recognise it as its own; a checkpoint lets that scope deliver its cancellation again.
            await anyio.lowlevel.checkpoint_if_cancelled()
            raise
        if not isinstance(response, kms_pb2.Response) or not response.data:
            raise KeyRejectedError(f"KMS at {self._endpoint}: {name} returned no data")
        return bytes(response.data)

    def _classify(self, name: str, exc: grpc.aio.AioRpcError) -> KeyProviderError:
        code = exc.code()
        details = (exc.details() or "").strip()[:200]
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return KeyTimeoutError(
                f"KMS at {self._endpoint}: {name} got no answer within {self._call_timeout:g} s"
            )
        if code in _REJECTED:
            return KeyRejectedError(f"KMS at {self._endpoint} refused {name}: {code.name}: {details}")
        return KeyUnavailableError(
            f"KMS unreachable at {self._endpoint}: {name} failed: {code.name}: {details}"
        )

    async def _open_channel(self) -> grpc.aio.Channel:
        if not self._endpoint.tls:
            return grpc.aio.insecure_channel(self._endpoint.target)
        tls = self._tls or KMSClientTLS()
        roots = tls.ca_pem if tls.ca_pem is not None else await anyio.to_thread.run_sync(_system_roots)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=roots, private_key=tls.key_pem, certificate_chain=tls.cert_pem
        )
        options: list[tuple[str, str]] = []
        if tls.server_name is not None:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        return grpc.aio.secure_channel(self._endpoint.target, credentials, options=options)

    def __repr__(self) -> str:
        return f"KMSClient({str(self._endpoint)!r})"


def _system_roots() -> bytes | None:
    """The system CA bundle (Talos trusts the system roots); ``None`` lets gRPC use its bundled roots."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, *_SYSTEM_CA_FILES):
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_bytes()
    return None
