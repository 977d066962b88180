"""Requests that break the wire protocol (no newline before EOF, JSON nested too deep, too long): a clear
``bad_request`` answer and an info record naming the problem, never "internal error" at error level."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from structlog.testing import capture_logs

from volumed.cli.api import ApiProtocolError
from volumed.cli.api._wire import MAX_DEPTH, decode
from volumed.runtime import in_memory_state

from ._helpers import connect, running_api

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "run" / "api.sock"


async def _answer(sock: Path, data: bytes, *, eof: bool = False) -> tuple[bytes, list[dict[str, Any]]]:
    with capture_logs() as logs:
        async with running_api(in_memory_state(), sock), connect(sock) as connection:
            await connection.stream.send(data)
            if eof:
                await connection.stream.send_eof()
            raw = await connection.rest()
    return raw, logs


def _refusals(logs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(r["log_level"], r["event"], r.get("reason", "")) for r in logs if r["event"] != "api listening"]


async def test_a_request_without_a_newline_before_eof(sock: Path) -> None:
    raw, logs = await _answer(sock, b'{"op": "get", "type": "vs"}', eof=True)
    message = "bad request: the connection ended before the request line's newline"
    assert raw == b'{"error":{"code":"bad_request","message":"' + message.encode() + b'"}}\n'
    assert _refusals(logs) == [("info", "api request refused", message)]


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 60_000 + b"\n",
        b'{"op": "get", "type": ' + b'{"a": ' * 65 + b"1" + b"}" * 65 + b"}\n",
    ],
    ids=["60000-deep", "66-deep-object"],
)
async def test_json_nested_too_deep(sock: Path, data: bytes) -> None:
    raw, logs = await _answer(sock, data)
    message = f"bad request: JSON nested deeper than {MAX_DEPTH} levels"
    assert raw == b'{"error":{"code":"bad_request","message":"' + message.encode() + b'"}}\n'
    assert _refusals(logs) == [("info", "api request refused", message)]


async def test_an_oversized_request_is_logged_at_info(sock: Path) -> None:
    raw, logs = await _answer(sock, b"x" * 70_000)
    assert b"bad request: longer than 65536 bytes" in raw
    assert _refusals(logs) == [("info", "api request refused", "bad request: longer than 65536 bytes")]


def test_decode_bounds_the_depth_and_counts_only_outside_strings() -> None:
    deep = b'{"a": ' * (MAX_DEPTH - 1) + b'"[[[{{{\\"[["' + b"}" * (MAX_DEPTH - 1) + b"\n"
    assert decode(deep, max_depth=MAX_DEPTH)
    with pytest.raises(ApiProtocolError, match=f"JSON nested deeper than {MAX_DEPTH} levels"):
        decode(b'{"a": ' * MAX_DEPTH + b"[]" + b"}" * MAX_DEPTH, max_depth=MAX_DEPTH)
    with pytest.raises(ApiProtocolError, match=f"JSON nested deeper than {MAX_DEPTH} levels"):
        decode(b"[" * 1_000_000, max_depth=MAX_DEPTH)


def test_decode_without_a_bound_still_refuses_what_json_cannot_nest() -> None:
    """The client reads answers up to 16 MiB unscanned; a hostile one nested past Python's recursion limit
    is a protocol error, not a RecursionError."""
    with pytest.raises(ApiProtocolError, match="not a JSON line: nested too deeply"):
        decode(b"[" * 1_000_000)
