"""Shared pieces of the API tests: a running server on an in-memory state, raw connections, resources."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream
from pydantic import SecretBytes

from volumed.cli.api import serve_api
from volumed.resources import (
    EncryptionSaltDefinition,
    EncryptionSaltSpec,
    VolumePhase,
    VolumeStatusDefinition,
    VolumeStatusSpec,
    registry,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from anyio.abc import SocketStream

    from volumed.runtime import Resource, ResourceRegistry, StateReader

SECRET = b"salt-that-must-never-leak-0123456789"


def volume_status(id: str, **spec: Any) -> Resource[VolumeStatusSpec]:
    return VolumeStatusDefinition.new(id, VolumeStatusSpec(**spec))


def salt() -> Resource[EncryptionSaltSpec]:
    return EncryptionSaltDefinition.new("encryption-salt", EncryptionSaltSpec(disk_salt=SecretBytes(SECRET)))


STATE_VOLUME: dict[str, Any] = {
    "phase": VolumePhase.READY,
    "location": "/dev/vda3",
    "mount_location": "/dev/loop7",
    "size": 104857600,
    "filesystem": "xfs",
    "encryption_provider": "luks2",
    "encryption_slot": 0,
    "configured_encryption_keys": ("nodeid", "static"),
}


@asynccontextmanager
async def running_api(
    state: StateReader,
    path: Path,
    *,
    types: ResourceRegistry | None = None,
    send_timeout: float = 5.0,
    max_clients: int = 64,
) -> AsyncIterator[Path]:
    """``serve_api`` in a task group for the duration of the block."""
    async with anyio.create_task_group() as group:
        serve = partial(
            serve_api,
            state,
            types or registry(),
            path,
            send_timeout=send_timeout,
            max_clients=max_clients,
        )
        await group.start(serve)
        yield path
        group.cancel_scope.cancel()


class RawConnection:
    """A raw client connection: send one request, read answer lines as JSON (and keep the raw bytes)."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self._reader = BufferedByteReceiveStream(stream)
        self.raw = b""

    async def request(self, **request: Any) -> None:
        await self.stream.send(json.dumps(request).encode() + b"\n")

    async def line(self) -> dict[str, Any]:
        with anyio.fail_after(5):
            data = await self._reader.receive_until(b"\n", 1 << 24)
        self.raw += data
        message = json.loads(data)
        assert isinstance(message, dict)
        return message

    async def rest(self) -> bytes:
        """Everything until the server closes the connection."""
        chunks = [self._reader.buffer]
        with anyio.fail_after(10):
            while True:
                try:
                    chunks.append(await self.stream.receive())
                except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError):
                    break
        data = b"".join(chunks)
        self.raw += data
        return data


@asynccontextmanager
async def connect(path: Path) -> AsyncIterator[RawConnection]:
    stream = await anyio.connect_unix(path)
    async with stream:
        yield RawConnection(stream)


async def ask(path: Path, **request: Any) -> tuple[list[dict[str, Any]], bytes]:
    """One request; every answer line until the server closes, and the raw bytes."""
    async with connect(path) as connection:
        await connection.request(**request)
        raw = await connection.rest()
    return [json.loads(line) for line in raw.splitlines()], raw
