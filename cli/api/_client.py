"""A blocking client of the local API, for the CLI: one connection per request, plain sockets, no loop."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, final

from ._constants import MAX_LINE
from ._errors import ApiError, ApiProtocolError, ApiRequestError, DaemonUnavailableError, WatchEndedError
from ._wire import TypeInfo, WireObject, decode, encode

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

DEFAULT_TIMEOUT = 30.0
"""Seconds `ApiClient.get` waits for the daemon (a watch waits for events without a limit)."""


@final
@dataclass(frozen=True, slots=True)
class GetResult:
    """The answer to `get`: the type as the server describes it and its resources, sorted by id."""

    type: TypeInfo
    items: tuple[WireObject, ...]


@final
@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One event of a watch: ``created``/``updated``/``destroyed`` with the resource, or ``bootstrapped``
    (no resource) once the current items have been sent."""

    type: str
    resource: WireObject | None = None


@final
class Watch:
    """An open watch: iterate for events; close it (or leave its ``with`` block) to stop watching."""

    def __init__(self, sock: socket.socket, reader: BinaryIO, type_info: TypeInfo, where: str) -> None:
        self._sock = sock
        self._reader = reader
        self._where = where
        self.type = type_info

    def __enter__(self) -> Watch:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Hang up (the server notices and stops the watch)."""
        self._reader.close()
        self._sock.close()

    def __iter__(self) -> Iterator[WatchEvent]:
        while True:
            message = _read_message(self._reader, self._where)
            if message is None:
                raise WatchEndedError(
                    f"volumed at {self._where} ended the watch (it stopped, or this client read too slowly)"
                )
            _raise_if_error(message)
            kind = message.get("event")
            if kind == "errored":
                raise WatchEndedError(f"volumed ended the watch: {message.get('message', 'no reason given')}")
            if kind not in ("created", "updated", "destroyed", "bootstrapped"):
                raise ApiProtocolError(f"unexpected message from {self._where}: no known event")
            resource = message.get("resource")
            if kind != "bootstrapped" and not isinstance(resource, dict):
                raise ApiProtocolError(
                    f"unexpected message from {self._where}: {kind} event without resource"
                )
            yield WatchEvent(kind, resource if isinstance(resource, dict) else None)


def _read_message(reader: BinaryIO, where: str) -> WireObject | None:
    """The next line as an object, None at a clean end of stream."""
    try:
        line = reader.readline(MAX_LINE + 1)
    except TimeoutError:
        raise ApiProtocolError(f"volumed at {where} did not answer in time") from None
    except OSError as error:
        raise ApiProtocolError(
            f"connection to volumed at {where} failed: {error.strerror or error}"
        ) from None
    if not line:
        return None
    if not line.endswith(b"\n"):
        if len(line) > MAX_LINE:
            raise ApiProtocolError(f"answer from {where} is longer than {MAX_LINE} bytes")
        raise ApiProtocolError(f"volumed at {where} hung up in the middle of an answer")
    return decode(line)


def _raise_if_error(message: WireObject) -> None:
    error = message.get("error")
    if error is None:
        return
    if not isinstance(error, dict):
        raise ApiProtocolError("malformed error from the server")
    raise ApiRequestError(str(error.get("code", "internal")), str(error.get("message", "unknown error")))


@final
class ApiClient:
    """Talks to the API of a running `volumed run` on ``socket_path`` (root only: the socket is 0600).

    Every call opens its own connection. Raises `DaemonUnavailableError` when nothing listens,
    `ApiRequestError` when the server refuses (unknown type, sensitive type, not found...),
    `ApiProtocolError` on a garbled answer.
    """

    def __init__(self, socket_path: Path | str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.socket_path = Path(socket_path)
        self._timeout = timeout

    def get(self, type_name: str, id: str | None = None, *, namespace: str | None = None) -> GetResult:
        """Resources of ``type_name`` (a type or an alias), or only ``id``; sorted by id."""
        sock, reader = self._request("get", type_name, id, namespace)
        try:
            answer = self._answer(reader)
            items = answer.get("items")
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise ApiProtocolError(f"unexpected answer from {self.socket_path}: no items")
            return GetResult(TypeInfo.from_wire(answer.get("type")), tuple(items))
        finally:
            reader.close()
            sock.close()

    def watch(self, type_name: str, id: str | None = None, *, namespace: str | None = None) -> Watch:
        """Start watching ``type_name`` (or only ``id``): the current items as ``created``, one
        ``bootstrapped``, then every change. Errors in the request raise here, before any event."""
        sock, reader = self._request("watch", type_name, id, namespace)
        try:
            answer = self._answer(reader)
            type_info = TypeInfo.from_wire(answer.get("type"))
            sock.settimeout(None)
        except BaseException:
            reader.close()
            sock.close()
            raise
        return Watch(sock, reader, type_info, str(self.socket_path))

    def stats(self) -> list[WireObject]:
        """Every controller's counters (``name``, ``reconciles``, ``errors``, durations...), in run order."""
        return self._controllers(self._ask({"op": "stats"}))

    def graph(self) -> WireObject:
        """The dependency graph: ``controllers`` (their ``inputs``, ``outputs``), ``dot`` and ``mermaid``."""
        answer = self._ask({"op": "graph"})
        self._controllers(answer)
        if not isinstance(answer.get("dot"), str) or not isinstance(answer.get("mermaid"), str):
            raise ApiProtocolError(f"unexpected answer from {self.socket_path}: no rendered graph")
        return answer

    def _controllers(self, answer: WireObject) -> list[WireObject]:
        controllers = answer.get("controllers")
        if not isinstance(controllers, list) or not all(isinstance(c, dict) for c in controllers):
            raise ApiProtocolError(f"unexpected answer from {self.socket_path}: no controllers")
        return controllers

    def _ask(self, message: WireObject) -> WireObject:
        sock, reader = self._send(message)
        try:
            return self._answer(reader)
        finally:
            reader.close()
            sock.close()

    def _answer(self, reader: BinaryIO) -> WireObject:
        message = _read_message(reader, str(self.socket_path))
        if message is None:
            raise ApiProtocolError(f"volumed at {self.socket_path} closed the connection without an answer")
        _raise_if_error(message)
        return message

    def _request(
        self, op: str, type_name: str, id: str | None, namespace: str | None
    ) -> tuple[socket.socket, BinaryIO]:
        return self._send({"op": op, "type": type_name, "id": id, "namespace": namespace})

    def _send(self, message: WireObject) -> tuple[socket.socket, BinaryIO]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._timeout)
            try:
                sock.connect(os.fspath(self.socket_path))
            except PermissionError:
                raise ApiRequestError(
                    "forbidden",
                    f"cannot connect to {self.socket_path}: permission denied (the volumed API is root only)",
                ) from None
            except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as error:
                raise DaemonUnavailableError(
                    f"no volumed running at {self.socket_path}: {error.strerror or error}"
                ) from None
            except OSError as error:
                raise DaemonUnavailableError(
                    f"no volumed running at {self.socket_path}: {error.strerror or error}"
                ) from None
            reader = sock.makefile("rb")
            try:
                sock.sendall(encode(message))
            except OSError as error:
                # The server may have refused before reading (and said why): prefer its answer.
                try:
                    self._answer(reader)
                except ApiRequestError:
                    raise
                except ApiError:
                    pass
                raise ApiProtocolError(
                    f"connection to volumed at {self.socket_path} failed: {error.strerror or error}"
                ) from None
            return sock, reader
        except BaseException:
            sock.close()
            raise
