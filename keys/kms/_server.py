"""The KMS server: Talos' ``sidero.kms.KMSService`` over grpc.aio, sealing with a rotatable key ring."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NoReturn, final

import anyio
import grpc
import grpc.aio
import structlog
from google.protobuf.message import DecodeError

from . import kms_pb2
from ._sealing import (
    BlobAuthenticationError,
    BlobFormatError,
    UnknownMasterKeyError,
    blob_key_id,
    seal_blob,
    unseal_blob,
)
from ._tls import check_server_tls

if TYPE_CHECKING:
    from types import TracebackType

    from ._master_keys import MasterKeyRing

SERVICE_NAME: Final = "sidero.kms.KMSService"
SEAL_DATA_SIZE: Final = 32
"""Seal accepts exactly this many bytes: a disk key, as Talos' reference server requires."""
MAX_NODE_UUID_LENGTH: Final = 256
MAX_UNSEAL_DATA_SIZE: Final = 4096

AUDIT_LOGGER_NAME: Final = "volumed.kms.audit"

MALFORMED_REQUEST: Final = "malformed request: not a sidero.kms.Request message"

_Context = grpc.aio.ServicerContext[kms_pb2.Request, kms_pb2.Response]


@final
@dataclass(frozen=True, slots=True)
class KMSServerTLS:
    """The server's TLS identity and, for mTLS, the CA that client certificates must chain to.

    Attributes:
        cert_pem: the server certificate chain.
        key_pem: its private key (never shown in a repr).
        client_ca_pem: when set, clients must present a certificate issued by this CA.
    """

    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    client_ca_pem: bytes | None = None


def _parse_request(raw: bytes) -> kms_pb2.Request | None:
    """The request, or ``None`` for bytes that are not one: the handler then refuses it with
    INVALID_ARGUMENT and an audit record (a failing deserializer made gRPC answer UNKNOWN, unaudited)."""
    try:
        return kms_pb2.Request.FromString(raw)
    except DecodeError:
        return None


class _Refusal(Exception):
    """A request the server answers with an error status; the text is safe to send and to log."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@final
class KMSService:
    """The Seal/Unseal handlers; swap the key ring with :meth:`reload` while serving.

    Every call is logged once on the audit logger (``volumed.kms.audit``) with the operation, the node UUID,
    the peer, the client certificate subject (mTLS), the master key id and the result; never the data.
    """

    __slots__ = ("_audit", "_ring")

    def __init__(self, ring: MasterKeyRing, *, audit: Any = None) -> None:
        self._ring = ring
        self._audit = audit if audit is not None else structlog.get_logger(AUDIT_LOGGER_NAME)

    @property
    def ring(self) -> MasterKeyRing:
        """The master keys in use."""
        return self._ring

    def reload(self, ring: MasterKeyRing) -> None:
        """Use ``ring`` from the next call on (after a rotation of the key file)."""
        self._ring = ring
        self._audit.info(
            "kms.keys_loaded", operation="reload", keys=len(ring.keys), primary=ring.primary_id, result="ok"
        )

    def handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        """The gRPC handler serving ``/sidero.kms.KMSService/{Seal,Unseal}``."""
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Seal": grpc.unary_unary_rpc_method_handler(
                    self.seal,
                    request_deserializer=_parse_request,
                    response_serializer=kms_pb2.Response.SerializeToString,
                ),
                "Unseal": grpc.unary_unary_rpc_method_handler(
                    self.unseal,
                    request_deserializer=_parse_request,
                    response_serializer=kms_pb2.Response.SerializeToString,
                ),
            },
        )

    async def seal(self, request: kms_pb2.Request | None, context: _Context) -> kms_pb2.Response:
        """Seal a 32-byte key for the node under the primary master key."""
        ring = self._ring
        try:
            request = self._check_request(request)
            if len(request.data) != SEAL_DATA_SIZE:
                raise _Refusal(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"data must be exactly {SEAL_DATA_SIZE} bytes, got {len(request.data)}",
                )
            blob = seal_blob(ring, request.node_uuid, request.data)
        except _Refusal as refusal:
            await self._refuse("seal", request, context, refusal)
        self._log_ok("seal", request, context, ring.primary_id)
        return kms_pb2.Response(data=blob)

    async def unseal(self, request: kms_pb2.Request | None, context: _Context) -> kms_pb2.Response:
        """Recover a key sealed for the node by any master key of the ring."""
        ring = self._ring
        key_id: str | None = None
        try:
            request = self._check_request(request)
            if not request.data or len(request.data) > MAX_UNSEAL_DATA_SIZE:
                raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, "sealed data is empty or too large")
            try:
                key_id = blob_key_id(request.data)
                data = unseal_blob(ring, request.node_uuid, request.data)
            except BlobFormatError as exc:
                raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
            except UnknownMasterKeyError as exc:
                raise _Refusal(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from None
            except BlobAuthenticationError as exc:
                raise _Refusal(grpc.StatusCode.PERMISSION_DENIED, str(exc)) from None
        except _Refusal as refusal:
            await self._refuse("unseal", request, context, refusal, key_id=key_id)
        self._log_ok("unseal", request, context, key_id)
        return kms_pb2.Response(data=data)

    @staticmethod
    def _check_request(request: kms_pb2.Request | None) -> kms_pb2.Request:
        if request is None:
            raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, MALFORMED_REQUEST)
        node_uuid = request.node_uuid
        if not node_uuid:
            raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, "node_uuid is empty")
        if len(node_uuid) > MAX_NODE_UUID_LENGTH or not node_uuid.isprintable():
            raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, "node_uuid is not a printable UUID string")
        return request

    def _log_ok(self, operation: str, request: kms_pb2.Request, context: _Context, key_id: str) -> None:
        self._audit.info(
            f"kms.{operation}",
            operation=operation,
            node_uuid=request.node_uuid,
            key_id=key_id,
            result="ok",
            **_peer_fields(context),
        )

    async def _refuse(
        self,
        operation: str,
        request: kms_pb2.Request | None,
        context: _Context,
        refusal: _Refusal,
        *,
        key_id: str | None = None,
    ) -> NoReturn:
        node_uuid = "" if request is None else request.node_uuid
        node_uuid = node_uuid if node_uuid.isprintable() else repr(node_uuid)
        self._audit.warning(
            f"kms.{operation}",
            operation=operation,
            node_uuid=node_uuid[:MAX_NODE_UUID_LENGTH],
            key_id=key_id,
            result="refused",
            code=refusal.code.name,
            reason=str(refusal),
            **_peer_fields(context),
        )
        await context.abort(refusal.code, str(refusal))


def _peer_fields(context: _Context) -> dict[str, str]:
    fields = {"peer": context.peer()}
    auth = context.auth_context()
    subject = auth.get("x509_common_name") or auth.get("x509_subject")
    if subject:
        fields["client_cert"] = b", ".join(subject).decode("utf-8", "replace")
    return fields


@final
class KMSServer:
    """A running KMS: ``async with KMSServer(ring, listen="127.0.0.1:0") as server: ... server.port``.

    Args:
        ring: the master keys.
        listen: ``host:port`` to bind (port 0 picks a free port; see :attr:`port`).
        tls: the server certificate and optional client CA; plaintext when ``None``.
        audit: a structlog-style logger for the audit records (default ``volumed.kms.audit``).
    """

    __slots__ = ("_listen", "_port", "_server", "_service", "_tls")

    def __init__(
        self, ring: MasterKeyRing, *, listen: str, tls: KMSServerTLS | None = None, audit: Any = None
    ) -> None:
        self._service = KMSService(ring, audit=audit)
        self._listen = listen
        self._tls = tls
        self._server: grpc.aio.Server | None = None
        self._port = 0

    @property
    def service(self) -> KMSService:
        """The handlers (for :meth:`KMSService.reload`)."""
        return self._service

    @property
    def port(self) -> int:
        """The bound port, once started."""
        return self._port

    @property
    def address(self) -> str:
        """``host:port`` actually bound, once started."""
        host = self._listen.rsplit(":", 1)[0]
        return f"{host}:{self._port}"

    async def start(self) -> None:
        """Bind and start serving.

        Raises:
            KMSTLSError: the TLS certificate, key or client CA is unusable, or the key is not the
                certificate's (gRPC itself would only say that it failed to bind).
            OSError: the address cannot be bound.
        """
        if self._tls is not None:
            tls = self._tls
            await anyio.to_thread.run_sync(check_server_tls, tls.cert_pem, tls.key_pem, tls.client_ca_pem)
        server = grpc.aio.server(handlers=[self._service.handler()])
        try:
            if self._tls is None:
                port = server.add_insecure_port(self._listen)
            else:
                credentials = grpc.ssl_server_credentials(
                    [(self._tls.key_pem, self._tls.cert_pem)],
                    root_certificates=self._tls.client_ca_pem,
                    require_client_auth=self._tls.client_ca_pem is not None,
                )
                port = server.add_secure_port(self._listen, credentials)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {self._listen}: {exc}") from None
        if port == 0:
            raise OSError(f"cannot listen on {self._listen}")
        await server.start()
        self._server, self._port = server, port

    async def stop(self, grace: float | None = 5.0) -> None:
        """Stop accepting calls, let running ones finish for ``grace`` seconds, then close; idempotent."""
        server, self._server = self._server, None
        if server is not None:
            with anyio.CancelScope(shield=True):
                await server.stop(grace)

    async def __aenter__(self) -> KMSServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
