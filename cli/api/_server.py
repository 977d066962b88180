"""The server of the read-only local API: `get`, `watch`, `stats`, `graph` over a unix socket, for root only.

Concurrency contract:
    - One task per connection; a connection serves one request, then closes (a watch runs until the client
      hangs up, the state closes, or the client is dropped).
    - Reads go through the state's own API (`list`/`get`/`watch_kind`): the server never blocks writers.
      A watch forwards events from the state's bounded watch (which resynchronises on its own when the
      client's task falls behind the history) and gives each line ``send_timeout`` seconds to be accepted
      by the socket; a client that cannot keep up is dropped, so nothing buffers without bound.
    - Cancelling `serve_api` closes every connection and removes the socket file it created.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, final

import anyio
import structlog
from anyio.abc import SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream
from pydantic import BaseModel, ConfigDict, ValidationError

from volumed.runtime import (
    Event,
    EventType,
    Kind,
    NotFoundError,
    Resource,
    SensitiveGuard,
    SensitiveResourceError,
)

from ._constants import MAX_REQUEST
from ._errors import ApiProtocolError, ErrorCode
from ._observe import graph_to_wire, stats_to_wire
from ._serialize import definition_to_wire, holds_secrets, resource_to_wire, value_holds_secrets
from ._socket import peer_uid, prepare_socket_path, remove_socket_if_ours, socket_identity
from ._wire import MAX_DEPTH, WireObject, decode, encode

if TYPE_CHECKING:
    from anyio.abc import SocketStream, TaskStatus

    from volumed.runtime import EventStream, ResourceDefinition, ResourceRegistry, StateReader

    from ._observe import Observable

DEFAULT_SEND_TIMEOUT = 5.0
"""Seconds a watch client gets to accept one event line before it is dropped."""

DEFAULT_MAX_CLIENTS = 64
"""Connections served at once; more are answered ``busy``."""

REQUEST_TIMEOUT = 10.0
"""Seconds a client gets to send its request line."""

_logger = structlog.get_logger("volumed.api")


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    op: Literal["get", "watch", "stats", "graph"]
    type: str | None = None
    id: str | None = None
    namespace: str | None = None


class _Refusal(Exception):
    """A request the server answers with an error line (never carries a resource value)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _sensitive(type_name: str) -> _Refusal:
    """The refusal of a sensitive type: its name only, never a value."""
    return _Refusal("sensitive", f"{type_name} is sensitive: not served by the API")


def _error(code: ErrorCode, message: str) -> WireObject:
    return {"error": {"code": code, "message": message}}


def _parse_request(line: bytes) -> _Request:
    try:
        return _Request.model_validate(decode(line, max_depth=MAX_DEPTH))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in error.errors()
        )
        raise _Refusal("bad_request", f"bad request: {problems}") from None
    except ApiProtocolError as error:
        raise _Refusal("bad_request", f"bad request: {error}") from None


@final
@dataclass(frozen=True, slots=True)
class _Target:
    definition: ResourceDefinition[Any]
    kind: Kind
    id: str | None


@final
class _ApiServer:
    """Answers one connection at a time per task; holds no per-client state beyond its counters."""

    def __init__(
        self,
        state: StateReader,
        registry: ResourceRegistry,
        *,
        send_timeout: float,
        max_clients: int,
        runtime: Observable | None = None,
    ) -> None:
        self._reader = SensitiveGuard(state, registry)
        self._runtime = runtime
        self._registry = registry
        self._send_timeout = send_timeout
        self._max_clients = max_clients
        self._clients = 0
        self._allowed_uids = frozenset({0, os.getuid()})

    async def handle(self, stream: SocketStream) -> None:
        """Serve one connection; never raises (a failing client must not stop the listener)."""
        async with stream:
            try:
                await self._serve(stream)
            except _Refusal as refusal:
                # A broken request is the client's mistake: a line in the log, not an error of the daemon
                # (not found, sensitive, busy are ordinary answers; a forbidden peer got its warning).
                if refusal.code == "bad_request":
                    _logger.info("api request refused", code=refusal.code, reason=refusal.message)
                await self._send_quietly(stream, _error(refusal.code, refusal.message))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError):
                pass  # the client went away
            except Exception as error:
                # Type and message only: a traceback with locals could show values of the state.
                _logger.error("api request failed", error=f"{type(error).__name__}: {error}")
                await self._send_quietly(stream, _error("internal", "internal error (see the daemon's log)"))

    async def _serve(self, stream: SocketStream) -> None:
        uid = peer_uid(stream.extra(SocketAttribute.raw_socket))
        # Read the request before any refusal: answering first would break the client's pipe mid-request.
        receiver = BufferedByteReceiveStream(stream)
        try:
            with anyio.fail_after(REQUEST_TIMEOUT):
                line = await receiver.receive_until(b"\n", MAX_REQUEST)
        except anyio.DelimiterNotFound:
            raise _Refusal("bad_request", f"bad request: longer than {MAX_REQUEST} bytes") from None
        except anyio.IncompleteRead:
            raise _Refusal(
                "bad_request", "bad request: the connection ended before the request line's newline"
            ) from None
        except TimeoutError:
            raise _Refusal("bad_request", f"bad request: none received in {REQUEST_TIMEOUT:g} s") from None
        if uid not in self._allowed_uids:
            _logger.warning("api connection refused", uid=uid)
            raise _Refusal(
                "forbidden",
                f"permission denied: uid {uid} may not use the volumed API (root only)",
            )
        if self._clients >= self._max_clients:
            raise _Refusal("busy", f"busy: already serving {self._max_clients} clients, try again")
        self._clients += 1
        try:
            request = _parse_request(line)
            if request.op in ("stats", "graph"):
                await self._observe(stream, request)
                return
            target = self._target(request)
            if request.op == "get":
                await self._get(stream, target)
            else:
                await self._watch(stream, receiver, target)
        finally:
            self._clients -= 1

    async def _observe(self, stream: SocketStream, request: _Request) -> None:
        """The runtime's counters or its dependency graph: controller and type names and numbers only."""
        if request.type is not None or request.id is not None or request.namespace is not None:
            raise _Refusal("bad_request", f"bad request: {request.op} takes no type, id or namespace")
        if self._runtime is None:
            raise _Refusal("unsupported", f"{request.op}: this server has no runtime to describe")
        if request.op == "stats":
            answer = stats_to_wire(self._runtime.stats().values())
        else:
            answer = graph_to_wire(self._runtime.graph())
        with anyio.fail_after(self._send_timeout):
            await self._send(stream, answer)

    def _target(self, request: _Request) -> _Target:
        if request.type is None:
            raise _Refusal("bad_request", f"bad request: type: {request.op} needs a type")
        definition = self._registry.find(request.type)
        if definition is None:
            served = [d.type for d in self._registry if not (d.sensitive or holds_secrets(d.spec_model))]
            raise _Refusal(
                "unknown_type",
                f"unknown resource type {request.type!r} (known types: {', '.join(served) or 'none'})",
            )
        if definition.sensitive or holds_secrets(definition.spec_model):
            raise _sensitive(definition.type)
        if request.namespace == "":
            raise _Refusal("bad_request", "bad request: namespace must not be empty")
        if request.id == "":
            raise _Refusal("bad_request", "bad request: id must not be empty")
        kind = Kind(request.namespace or definition.default_namespace, definition.type)
        return _Target(definition, kind, request.id)

    def _resource(self, resource: Resource[Any]) -> WireObject:
        if holds_secrets(type(resource.spec)) or value_holds_secrets(resource.spec):
            # A resource whose value is secret although its type is not registered as such (or holds a
            # secret in a field typed Any: only its value says so).
            raise _sensitive(resource.metadata.type)
        return resource_to_wire(resource)

    async def _send(self, stream: SocketStream, message: WireObject) -> None:
        await stream.send(encode(message))

    async def _send_quietly(self, stream: SocketStream, message: WireObject) -> None:
        try:
            with anyio.move_on_after(self._send_timeout):
                await self._send(stream, message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass

    async def _get(self, stream: SocketStream, target: _Target) -> None:
        try:
            if target.id is None:
                resources = await self._reader.list(target.kind)
            else:
                resources = [await self._reader.get(target.kind.pointer(target.id))]
        except NotFoundError:
            raise _Refusal(
                "not_found",
                f"{target.definition.type} {target.id!r} not found in namespace {target.kind.namespace}",
            ) from None
        except SensitiveResourceError:
            raise _sensitive(target.definition.type) from None
        answer = {
            "type": definition_to_wire(target.definition, target.kind.namespace),
            "items": [self._resource(r) for r in resources],
        }
        with anyio.fail_after(self._send_timeout):
            await self._send(stream, answer)

    async def _watch(
        self, stream: SocketStream, receiver: BufferedByteReceiveStream, target: _Target
    ) -> None:
        try:
            if target.id is None:
                events = self._reader.watch_kind(target.kind, bootstrap=True)
            else:
                events = self._reader.watch(target.kind.pointer(target.id))
        except SensitiveResourceError:
            raise _sensitive(target.definition.type) from None
        async with events, anyio.create_task_group() as group:
            group.start_soon(self._hang_up_on_eof, receiver, group.cancel_scope)
            await self._send(stream, {"type": definition_to_wire(target.definition, target.kind.namespace)})
            await self._forward(stream, events, single=target.id is not None)
            group.cancel_scope.cancel()

    async def _forward(self, stream: SocketStream, events: EventStream, *, single: bool) -> None:
        first = single
        async for event in events:
            try:
                messages = self._event_messages(event)
            except _Refusal as refusal:  # a resource holding a secret: the watch ends with the refusal
                await self._send_quietly(stream, _error(refusal.code, refusal.message))
                return
            if first:
                messages.append({"event": EventType.BOOTSTRAPPED.value})
                first = False
            for message in messages:
                try:
                    with anyio.fail_after(self._send_timeout):
                        await self._send(stream, message)
                except TimeoutError:
                    _logger.warning("api watch client dropped: too slow", send_timeout=self._send_timeout)
                    return
            if event.type is EventType.ERRORED:
                return

    def _event_messages(self, event: Event) -> list[WireObject]:
        if event.type is EventType.NOOP:
            return []
        if event.type is EventType.ERRORED:
            return [{"event": event.type.value, "message": str(event.error or "watch ended")}]
        if event.resource is None:
            return [{"event": event.type.value}]
        return [{"event": event.type.value, "resource": self._resource(event.resource)}]

    @staticmethod
    async def _hang_up_on_eof(receiver: BufferedByteReceiveStream, scope: anyio.CancelScope) -> None:
        """A watch client says nothing after its request: any input or EOF ends the watch."""
        with contextlib.suppress(
            anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError
        ):
            await receiver.receive()
        scope.cancel()


async def serve_api(
    state: StateReader,
    registry: ResourceRegistry,
    socket_path: Path | str,
    *,
    send_timeout: float = DEFAULT_SEND_TIMEOUT,
    max_clients: int = DEFAULT_MAX_CLIENTS,
    runtime: Observable | None = None,
    task_status: TaskStatus[Path] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the read-only API for ``state`` on the unix socket ``socket_path`` until cancelled.

    Start it with ``await task_group.start(serve_api, state, registry, path)``: that returns once the socket
    accepts connections (mode 0600, parent directory created 0700 if missing). Only peers running as root or
    as this process's uid are served (SO_PEERCRED). Types are looked up in ``registry`` by name or alias;
    sensitive types are refused. With a ``runtime`` (`volumed run` passes its own) the server also answers
    ``stats`` (every controller's counters) and ``graph`` (which controller reads and writes which types).
    On exit the socket file is removed (if it is still ours).

    Raises:
        SocketInUseError: another server answers on ``socket_path``, or the path is not a socket. A stale
            socket (nobody listening) is replaced.
    """
    path = Path(socket_path)
    server = _ApiServer(state, registry, send_timeout=send_timeout, max_clients=max_clients, runtime=runtime)
    await anyio.to_thread.run_sync(prepare_socket_path, path)
    listener = await anyio.create_unix_listener(path, mode=0o600)
    identity: tuple[int, int] | None = None
    try:
        identity = await anyio.to_thread.run_sync(socket_identity, path)
        async with listener:
            _logger.info("api listening", socket=str(path))
            task_status.started(path)
            await listener.serve(server.handle)
    finally:
        with anyio.CancelScope(shield=True):
            await listener.aclose()
            await anyio.to_thread.run_sync(remove_socket_if_ours, path, identity)
