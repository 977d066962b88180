"""`volumed get` and `volumed watch` against a server running in a background event loop: exact output."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from anyio.from_thread import start_blocking_portal
from click.testing import CliRunner
from pydantic import SecretBytes

from volumed.cli import volumed
from volumed.cli.api import resource_to_wire, serve_api
from volumed.resources import (
    EncryptionSaltDefinition,
    EncryptionSaltSpec,
    VolumePhase,
    VolumeStatusDefinition,
    VolumeStatusSpec,
    registry,
)
from volumed.runtime import in_memory_state

if TYPE_CHECKING:
    from collections.abc import Iterator

    from anyio.from_thread import BlockingPortal

    from volumed.runtime import Resource, State

SECRET = b"never-print-this-salt-0123456789"
VOLUMED = str(Path(sys.executable).with_name("volumed"))


@dataclass
class Daemon:
    """The API of a pretend `volumed run`: an in-memory state served on ``socket`` from another thread."""

    portal: BlockingPortal
    state: State
    socket: Path

    def create(self, resource: Resource[Any]) -> Resource[Any]:
        return self.portal.call(partial(self.state.create, resource, owner="VolumeFormatter"))

    def set_phase(self, id: str, phase: VolumePhase) -> Resource[Any]:
        pointer = VolumeStatusDefinition.new(id, VolumeStatusSpec()).pointer
        current = self.portal.call(self.state.get, pointer)
        changed = current.with_spec(current.spec.model_copy(update={"phase": phase}))
        return self.portal.call(partial(self.state.update, changed, owner="VolumeFormatter"))


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    state = in_memory_state()
    path = tmp_path / "api.sock"
    with start_blocking_portal() as portal:
        server, _ = portal.start_task(partial(serve_api, state, registry(), path))
        yield Daemon(portal, state, path)
        server.cancel()


@pytest.fixture
def volumes(daemon: Daemon) -> list[Resource[Any]]:
    return [
        daemon.create(
            VolumeStatusDefinition.new(
                "STATE",
                VolumeStatusSpec(
                    phase=VolumePhase.READY,
                    location="/dev/vda3",
                    mount_location="/dev/loop7",
                    size=104857600,
                    filesystem="xfs",
                    encryption_provider="luks2",
                    encryption_slot=0,
                ),
            )
        ),
        daemon.create(VolumeStatusDefinition.new("EPHEMERAL", VolumeStatusSpec(error_message="no disk yet"))),
        daemon.create(
            EncryptionSaltDefinition.new("encryption-salt", EncryptionSaltSpec(disk_salt=SecretBytes(SECRET)))
        ),
    ]


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(volumed, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


TABLE = (
    "NAMESPACE  ID         VERSION  PHASE    LOCATION   MOUNT       SIZE       FILESYSTEM  ENCRYPTION  SLOT  "
    "ERROR\n"
    "block      EPHEMERAL  1        waiting                         0                                        "
    "no disk yet\n"
    "block      STATE      1        ready    /dev/vda3  /dev/loop7  104857600  xfs         luks2       0\n"
)


@pytest.mark.parametrize("name", ["volumestatuses", "vs", "VolumeStatuses.block.volumed.dev"])
def test_get_table(daemon: Daemon, volumes: list[Resource[Any]], name: str) -> None:
    assert run("get", name, "--socket", str(daemon.socket)) == (0, TABLE, "")


def test_get_one_as_table_with_the_socket_from_the_environment(
    daemon: Daemon, volumes: list[Resource[Any]]
) -> None:
    assert run("get", "vs", "STATE", env={"VOLUMED_SOCKET": str(daemon.socket)}) == (
        0,
        "NAMESPACE  ID     VERSION  PHASE  LOCATION   MOUNT       SIZE       FILESYSTEM  ENCRYPTION  SLOT  "
        "ERROR\n"
        "block      STATE  1        ready  /dev/vda3  /dev/loop7  104857600  xfs         luks2       0\n",
        "",
    )


def test_get_yaml(daemon: Daemon, volumes: list[Resource[Any]]) -> None:
    code, out, err = run("get", "vs", "-o", "yaml", "--socket", str(daemon.socket))
    assert (code, err) == (0, "")
    ephemeral, state = volumes[1], volumes[0]
    assert list(yaml.safe_load_all(out)) == [resource_to_wire(ephemeral), resource_to_wire(state)]
    assert out.startswith(
        "---\n"
        "metadata:\n"
        "  namespace: block\n"
        "  type: VolumeStatuses.block.volumed.dev\n"
        "  id: EPHEMERAL\n"
        "  version: 1\n"
        "  owner: VolumeFormatter\n"
        "  phase: running\n"
        f"  created: '{ephemeral.metadata.created.isoformat()}'\n"
        f"  updated: '{ephemeral.metadata.updated.isoformat()}'\n"
        "  labels: {}\n"
        "  annotations: {}\n"
        "  finalizers: []\n"
        "spec:\n"
        "  phase: waiting\n"
        "  pre_fail_phase: null\n"
        "  error_message: no disk yet\n"
    )
    assert out.count("---\n") == 2


def test_get_json(daemon: Daemon, volumes: list[Resource[Any]]) -> None:
    code, out, err = run("get", "volumestatus", "STATE", "-o", "json", "--socket", str(daemon.socket))
    assert (code, err) == (0, "")
    assert out == json.dumps(resource_to_wire(volumes[0]), indent=2) + "\n"
    code, out, err = run("get", "vs", "-o", "json", "--socket", str(daemon.socket))
    decoder = json.JSONDecoder()
    first, end = decoder.raw_decode(out)
    second, _ = decoder.raw_decode(out, end + 1)
    assert [first["metadata"]["id"], second["metadata"]["id"]] == ["EPHEMERAL", "STATE"]


def test_get_nothing(daemon: Daemon) -> None:
    assert run("get", "disks", "--socket", str(daemon.socket)) == (
        0,
        "",
        "No Disks.block.volumed.dev found in namespace block.\n",
    )
    assert run("get", "disks", "-o", "yaml", "--socket", str(daemon.socket)) == (0, "", "")
    assert run("get", "vs", "-n", "other", "--socket", str(daemon.socket)) == (
        0,
        "",
        "No VolumeStatuses.block.volumed.dev found in namespace other.\n",
    )


def test_get_errors(daemon: Daemon, volumes: list[Resource[Any]]) -> None:
    sock = str(daemon.socket)
    assert run("get", "vs", "USER", "--socket", sock) == (
        1,
        "",
        "Error: VolumeStatuses.block.volumed.dev 'USER' not found in namespace block\n",
    )
    code, out, err = run("get", "volumes", "--socket", sock)
    assert (code, out) == (1, "")
    assert err.startswith(
        "Error: unknown resource type 'volumes' (known types: ConfigStatuses.config.volumed.dev, "
    )
    code, out, err = run("get", "vs", "-o", "wide", "--socket", sock)
    assert (code, out) == (1, "")
    assert err.endswith(
        "Error: Invalid value for '-o' / '--output': 'wide' is not one of 'table', 'yaml', 'json'.\n"
    )
    assert run("get", "--socket", sock)[0] == 1


@pytest.mark.parametrize("output", ["table", "yaml", "json"])
@pytest.mark.parametrize("name", ["encryptionsalts", "volumekeysecrets", "metakeys"])
def test_get_sensitive_is_refused(
    daemon: Daemon, volumes: list[Resource[Any]], name: str, output: str
) -> None:
    code, out, err = run("get", name, "encryption-salt", "-o", output, "--socket", str(daemon.socket))
    assert (code, out) == (1, "")
    assert err.startswith("Error: ")
    assert err.endswith(" is sensitive: not served by the API\n")
    assert SECRET.decode() not in out + err


def test_no_daemon(tmp_path: Path) -> None:
    missing = tmp_path / "api.sock"
    assert run("get", "vs", "--socket", str(missing)) == (
        4,
        "",
        f"Error: no volumed running at {missing}: No such file or directory\n",
    )
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(missing))
    stale.close()
    assert run("watch", "vs", "--socket", str(missing)) == (
        4,
        "",
        f"Error: no volumed running at {missing}: Connection refused\n",
    )


def test_help_names_the_socket_variable() -> None:
    code, out, _err = run("get", "--help")
    assert code == 0
    assert "VOLUMED_SOCKET" in out
    assert "/run/volumed/api.sock" in out


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_watch_outlives_its_test() -> Iterator[None]:
    """A `volumed watch` a failed test left running is killed and reaped (its pipes closed) right away."""
    yield
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            process.kill()
        process.communicate()


def _watch(daemon: Daemon, *args: str) -> subprocess.Popen[str]:
    # A shell starts a background job with SIGINT ignored (`make test &`), and an ignored signal stays ignored
    # across exec: the watch would never see the interrupt test's SIGINT. A caught one starts as the default.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [VOLUMED, "watch", *args, "--socket", str(daemon.socket)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    _STARTED.append(process)
    return process


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.communicate(timeout=10)


def test_watch_json_lines(daemon: Daemon, volumes: list[Resource[Any]]) -> None:
    process = _watch(daemon, "vs", "-o", "json")
    try:
        assert process.stdout is not None
        lines = [json.loads(process.stdout.readline()) for _ in range(3)]
        assert [(line["event"], line.get("metadata", {}).get("id")) for line in lines] == [
            ("created", "EPHEMERAL"),
            ("created", "STATE"),
            ("bootstrapped", None),
        ]
        updated = daemon.set_phase("EPHEMERAL", VolumePhase.LOCATED)
        assert json.loads(process.stdout.readline()) == {"event": "updated", **resource_to_wire(updated)}
    finally:
        _stop(process)


def test_watch_table(daemon: Daemon, volumes: list[Resource[Any]]) -> None:
    process = _watch(daemon, "vs")
    try:
        assert process.stdout is not None
        bootstrap = [process.stdout.readline() for _ in range(3)]
        daemon.set_phase("EPHEMERAL", VolumePhase.LOCATED)
        change = process.stdout.readline()
    finally:
        _stop(process)
    header, ephemeral, state = TABLE.splitlines(keepends=True)
    assert [*bootstrap, change] == [
        f"EVENT    {header}",
        f"CREATED  {ephemeral}",
        f"CREATED  {state}",
        "UPDATED  " + ephemeral.replace("1        waiting", "2        located"),
    ]


def test_watch_sensitive_is_refused(daemon: Daemon, volumes: list[Resource[Any]]) -> None:
    code, out, err = run("watch", "encryptionsalt", "--socket", str(daemon.socket))
    assert (code, out) == (1, "")
    assert err == "Error: EncryptionSalts.block.volumed.dev is sensitive: not served by the API\n"


def test_watch_ends_when_the_daemon_stops(tmp_path: Path) -> None:
    state = in_memory_state()
    path = tmp_path / "api.sock"
    with start_blocking_portal() as portal:
        server, _ = portal.start_task(partial(serve_api, state, registry(), path))
        process = subprocess.Popen(
            [VOLUMED, "watch", "disks", "-o", "yaml", "--socket", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        assert [process.stdout.readline(), process.stdout.readline()] == ["---\n", "event: bootstrapped\n"]
        server.cancel()
        out, err = process.communicate(timeout=10)
    assert (process.returncode, out) == (1, "")
    assert err == (f"Error: volumed at {path} ended the watch (it stopped, or this client read too slowly)\n")


def test_watch_stops_quietly_on_interrupt(daemon: Daemon, volumes: list[Resource[Any]]) -> None:
    process = _watch(daemon, "vs", "-o", "json")
    assert process.stdout is not None
    assert json.loads(process.stdout.readline())["event"] == "created"
    while json.loads(process.stdout.readline())["event"] != "bootstrapped":
        pass  # the other current items; then it waits for changes
    process.send_signal(signal.SIGINT)
    try:
        _out, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:  # say where it was (SIGINT ignored: SigIgn has bit 1)
        pytest.fail(f"volumed watch still runs 20 s after SIGINT: {_signal_state(process.pid)}")
    assert (process.returncode, err) == (130, "")


def _signal_state(pid: int) -> str:
    """The signal masks and the kernel wait channel of a process (for a failure's message)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        masks = [line.strip() for line in status if line.startswith(("SigBlk", "SigIgn", "SigCgt", "State"))]
    with open(f"/proc/{pid}/wchan", encoding="ascii") as wchan:
        return f"{'; '.join(masks)}; wchan {wchan.read()}"


def test_watch_stops_quietly_when_its_reader_goes_away(daemon: Daemon, volumes: list[Resource[Any]]) -> None:
    process = _watch(daemon, "vs", "-o", "json")
    assert process.stdout is not None
    assert json.loads(process.stdout.readline())["event"] == "created"
    process.stdout.close()  # like `volumed watch vs | head -1`
    for phase in (VolumePhase.LOCATED, VolumePhase.PREPARED, VolumePhase.READY):
        daemon.set_phase("EPHEMERAL", phase)
    assert process.stderr is not None
    with process.stderr:
        err = process.stderr.read()
    assert process.wait(timeout=10) == 1
    assert err == ""
