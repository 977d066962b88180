"""ApiClient against peers that misbehave: garbage, half answers, silence, errors, nothing listening."""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING

import pytest

from volumed.cli.api import (
    ApiClient,
    ApiProtocolError,
    ApiRequestError,
    DaemonUnavailableError,
    WatchEndedError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

TYPE = (
    b'{"type": {"type": "Disks.block.volumed.dev", "namespace": "block", "aliases": [], "print_columns": []}'
)


@pytest.fixture
def fake_server(tmp_path: Path) -> Iterator[tuple[Path, list[bytes]]]:
    """A one-shot server that reads the request, then sends whatever the test put in ``answers[0]``."""
    path = tmp_path / "fake.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen()
    answers: list[bytes] = []
    requests: list[bytes] = []

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            requests.append(connection.makefile("rb").readline())
            connection.sendall(answers[0])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, answers
    listener.close()
    thread.join(timeout=5)
    if requests:
        assert requests[0].endswith(b"\n")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"garbage\n", "not a JSON line"),
        (b'{"items": [1]}\n', "no items"),
        (b'{"items": []', "hung up in the middle of an answer"),
        (b"", "closed the connection without an answer"),
        (b'{"items": [], "type": 3}\n', "malformed type description"),
        (b'{"error": "x"}\n', "malformed error from the server"),
    ],
)
def test_get_protocol_errors(fake_server: tuple[Path, list[bytes]], answer: bytes, message: str) -> None:
    path, answers = fake_server
    answers.append(answer)
    with pytest.raises(ApiProtocolError, match=message):
        ApiClient(path).get("disks")


def test_get_error_answer(fake_server: tuple[Path, list[bytes]]) -> None:
    path, answers = fake_server
    answers.append(b'{"error": {"code": "not_found", "message": "gone"}}\n')
    with pytest.raises(ApiRequestError) as caught:
        ApiClient(path).get("disks", "x")
    assert (caught.value.code, str(caught.value)) == ("not_found", "gone")


def test_silent_server_times_out(fake_server: tuple[Path, list[bytes]]) -> None:
    path, answers = fake_server
    answers.append(b"")
    listener_only = ApiClient(path, timeout=0.2)
    # The fake closes right away; a second connection is accepted by the backlog but never answered.
    with pytest.raises(ApiProtocolError):
        listener_only.get("disks")
    with pytest.raises(ApiProtocolError, match="did not answer in time"):
        listener_only.get("disks")


@pytest.mark.parametrize(
    ("events", "error", "message"),
    [
        (
            b'{"event": "errored", "message": "state closed"}\n',
            WatchEndedError,
            "volumed ended the watch: state closed",
        ),
        (b"", WatchEndedError, "ended the watch"),
        (b'{"event": "exploded"}\n', ApiProtocolError, "no known event"),
        (b'{"event": "created"}\n', ApiProtocolError, "created event without resource"),
        (b'{"error": {"code": "sensitive", "message": "no"}}\n', ApiRequestError, "no"),
    ],
)
def test_watch_endings(
    fake_server: tuple[Path, list[bytes]], events: bytes, error: type[Exception], message: str
) -> None:
    path, answers = fake_server
    answers.append(TYPE + b"}\n" + b'{"event": "bootstrapped"}\n' + events)
    with ApiClient(path).watch("disks") as watch:
        assert watch.type.type == "Disks.block.volumed.dev"
        stream = iter(watch)
        assert next(stream).type == "bootstrapped"
        with pytest.raises(error, match=message):
            next(stream)


def test_nothing_listening(tmp_path: Path) -> None:
    with pytest.raises(
        DaemonUnavailableError, match=f"^no volumed running at {tmp_path}/x.sock: No such file"
    ):
        ApiClient(tmp_path / "x.sock").get("disks")
    (tmp_path / "dir").mkdir()
    with pytest.raises(DaemonUnavailableError, match=r"^no volumed running at .*/dir: Connection refused"):
        ApiClient(tmp_path / "dir").get("disks")
