"""The socket file of serve_api: mode 0600, stale sockets replaced, live ones and other files left alone."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from volumed.cli.api import SocketInUseError, serve_api
from volumed.resources import registry
from volumed.runtime import in_memory_state

from ._helpers import ask, running_api

if TYPE_CHECKING:
    from collections.abc import Iterator

# Connects as another user and prints the server's answer (plain stdlib: runs under any uid).
_FOREIGN_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"op": "get", "type": "disks"}\\n')
print(s.makefile("rb").readline().decode(), end="")
"""
NOBODY = 65534


async def test_socket_is_0600_in_a_0700_directory_and_removed_on_exit(tmp_path: Path) -> None:
    path = tmp_path / "run" / "volumed" / "api.sock"
    async with running_api(in_memory_state(), path):
        info = path.lstat()
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not path.exists()


async def test_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # bound, never listening: what a killed daemon leaves behind
    async with running_api(in_memory_state(), path):
        messages, _raw = await ask(path, op="get", type="disks")
    assert messages[0]["items"] == []


async def test_live_socket_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    async with running_api(in_memory_state(), path):
        with pytest.raises(SocketInUseError, match=f"^another server is already listening on {path}$"):
            await serve_api(in_memory_state(), registry(), path)
        messages, _raw = await ask(path, op="get", type="disks")
        assert messages[0]["items"] == []


async def test_a_file_in_the_way_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    path.write_text("not a socket")
    with pytest.raises(
        SocketInUseError, match=f"^{path} exists and is not a socket: refusing to replace it$"
    ):
        await serve_api(in_memory_state(), registry(), path)
    assert path.read_text() == "not a socket"


@pytest.fixture
def open_directory() -> Iterator[Path]:
    """A directory other users may traverse (pytest's tmp_path is 0700 all the way up)."""
    directory = Path(tempfile.mkdtemp(prefix="volumed-api-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


async def test_other_users_are_refused_by_peer_credentials(open_directory: Path) -> None:
    """Even with the file mode opened up, a peer that is neither root nor the server's uid is refused."""
    path = open_directory / "api.sock"
    async with running_api(in_memory_state(), path):
        await anyio.to_thread.run_sync(path.chmod, 0o666)
        result = await anyio.run_process(
            ["/usr/bin/python3", "-c", _FOREIGN_CLIENT, str(path)], user=NOBODY, check=False
        )
        own, _raw = await ask(path, op="get", type="disks")
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout) == {
        "error": {
            "code": "forbidden",
            "message": f"permission denied: uid {NOBODY} may not use the volumed API (root only)",
        }
    }
    assert own[0]["items"] == []


def test_prepare_leaves_a_missing_path_missing(tmp_path: Path) -> None:
    from volumed.cli.api._socket import prepare_socket_path

    path = tmp_path / "a" / "b" / "api.sock"
    prepare_socket_path(path)
    assert not path.exists()
    assert path.parent.is_dir()
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
