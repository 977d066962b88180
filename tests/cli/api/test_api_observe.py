"""The API's ``stats`` and ``graph`` requests: a runtime's counters and dependency graph for `volumed metrics`
and `volumed graph` (before, runtime.stats() and graph() could not be read from outside the process); the
reconcile-duration histogram; the log set-up that keeps other libraries at WARNING under ``-v``."""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import TYPE_CHECKING

import anyio
import pytest
import structlog

from volumed.cli._logging import configure_logging, parse_log_levels
from volumed.cli.api import ApiClient, ApiRequestError, serve_api
from volumed.resources import BLOCK, VolumeStatusDefinition, VolumeStatusSpec, registry
from volumed.runtime import Kind, in_memory_state
from volumed.runtime.controller import Controller, Input, Output, Runtime
from volumed.runtime.controller._metrics import DURATION_BUCKETS, ControllerMetrics

from ._helpers import connect

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.runtime.controller import ControllerContext


class Writer(Controller):
    name = "Writer"
    outputs = (Output(VolumeStatusDefinition.type, namespace=BLOCK),)

    async def reconcile(self, ctx: ControllerContext) -> None:
        await ctx.apply(VolumeStatusDefinition.new("v", VolumeStatusSpec()))


class Reader(Controller):
    name = "Reader"
    inputs = (Input(BLOCK, VolumeStatusDefinition.type),)

    async def reconcile(self, ctx: ControllerContext) -> None:
        await ctx.list(Kind(BLOCK, VolumeStatusDefinition.type))


async def _ask(path: Path, call: str) -> object:
    return await anyio.to_thread.run_sync(getattr(ApiClient(path), call))


async def test_stats_and_graph_of_a_running_runtime(tmp_path: Path) -> None:
    state = in_memory_state()
    runtime = Runtime(state)
    runtime.register(Writer())
    runtime.register(Reader())
    path = tmp_path / "api.sock"
    async with runtime, anyio.create_task_group() as group:
        await group.start(partial(serve_api, state, registry(), path, runtime=runtime))
        with anyio.fail_after(30):
            while min(s.reconciles_ended for s in runtime.stats().values()) < 1:  # noqa: ASYNC110 (counters)
                await anyio.sleep(0.01)
        stats = await _ask(path, "stats")
        graph = await _ask(path, "graph")
        group.cancel_scope.cancel()
    assert isinstance(stats, list)
    assert [c["name"] for c in stats] == ["Writer", "Reader"]
    writer, reader = stats
    assert writer["writes"] == 1
    assert reader["reconciles"] >= 1
    assert reader["reconciles_ended"] <= reader["reconciles"]
    assert [bound for bound, _count in reader["duration_buckets"]] == list(DURATION_BUCKETS)
    counts = [count for _bound, count in reader["duration_buckets"]]
    assert counts == sorted(counts)
    assert counts[-1] <= reader["reconciles_ended"]
    assert reader["reconcile_seconds"] >= 0
    assert isinstance(graph, dict)
    assert graph["controllers"] == [
        {
            "name": "Writer",
            "inputs": [],
            "outputs": [{"namespace": BLOCK, "type": VolumeStatusDefinition.type, "kind": "exclusive"}],
        },
        {
            "name": "Reader",
            "inputs": [{"namespace": BLOCK, "type": VolumeStatusDefinition.type, "kind": "weak", "id": None}],
            "outputs": [],
        },
    ]
    assert graph["dot"] == runtime.graph().to_dot()
    assert graph["mermaid"] == runtime.graph().to_mermaid()


async def test_a_server_without_a_runtime_says_so(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    async with anyio.create_task_group() as group:
        await group.start(partial(serve_api, in_memory_state(), registry(), path))
        with pytest.raises(ApiRequestError) as caught:
            await _ask(path, "stats")
        group.cancel_scope.cancel()
    assert caught.value.code == "unsupported"
    assert caught.value.message == "stats: this server has no runtime to describe"


@pytest.mark.parametrize(
    ("request_line", "message"),
    [
        (b'{"op": "stats", "type": "vs"}\n', "bad request: stats takes no type, id or namespace"),
        (b'{"op": "get"}\n', "bad request: type: get needs a type"),
        (b'{"op": "metrics"}\n', "bad request: op: Input should be 'get', 'watch', 'stats' or 'graph'"),
    ],
)
async def test_malformed_observe_requests(tmp_path: Path, request_line: bytes, message: str) -> None:
    path = tmp_path / "api.sock"
    runtime = Runtime(in_memory_state())
    async with anyio.create_task_group() as group:
        await group.start(partial(serve_api, runtime.state, registry(), path, runtime=runtime))
        async with connect(path) as connection:
            await connection.stream.send(request_line)
            raw = await connection.rest()
        group.cancel_scope.cancel()
    assert raw == b'{"error":{"code":"bad_request","message":"' + message.encode() + b'"}}\n'


def test_reconcile_durations_go_in_cumulative_buckets() -> None:
    metrics = ControllerMetrics("c")
    metrics.reconcile_started()
    metrics.reconcile_ended(time.monotonic() - 2.0)  # between 1 and 5 seconds
    metrics.reconcile_started()  # still running: counted as started, not in the histogram
    stats = metrics.snapshot()
    assert stats.reconciles == 2
    assert stats.reconciles_ended == 1
    assert 2.0 <= stats.reconcile_seconds == stats.reconcile_seconds_max < 5.0
    assert dict(stats.duration_buckets) == {b: (1 if b >= 5.0 else 0) for b in DURATION_BUCKETS}


def test_log_levels_from_the_environment() -> None:
    assert parse_log_levels("grpc=info, celpy=DEBUG,,bogus,x=loud") == (
        {"grpc": logging.INFO, "celpy": logging.DEBUG},
        ["bogus", "x=loud"],
    )


def test_verbose_logs_volumed_at_debug_and_other_libraries_at_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOLUMED_LOG_LEVELS", "grpc=info,not-a-level")
    names = ("", "volumed", "grpc", "celpy", "lark", "asyncio")
    before = {name: logging.getLogger(name).level for name in names}
    try:
        configure_logging(verbose=True)
        structlog.get_logger("volumed.test").debug("a volumed debug line")
        assert logging.getLogger("volumed.storage.activation._fuse").isEnabledFor(logging.DEBUG)
        for library in ("celpy.Evaluator", "lark", "asyncio", "urllib3"):
            assert not logging.getLogger(library).isEnabledFor(logging.INFO), library
        assert logging.getLogger("grpc._channel").isEnabledFor(logging.INFO)
    finally:
        structlog.reset_defaults()
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)
    err = capsys.readouterr().err
    assert "a volumed debug line" in err
    assert "ignoring an item that is not NAME=LEVEL" in err
    assert "item=not-a-level" in err


@pytest.mark.parametrize("command", ["metrics", "graph"])
def test_no_daemon_exits_4(tmp_path: Path, command: str) -> None:
    from click.testing import CliRunner

    from volumed.cli._main import volumed

    result = CliRunner().invoke(volumed, [command, "--socket", str(tmp_path / "none.sock")])
    assert result.exit_code == 4
    assert f"no volumed running at {tmp_path / 'none.sock'}" in result.output
