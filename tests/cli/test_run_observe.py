"""A running `volumed run` seen from outside: `volumed metrics` (a table, the Prometheus text format) and
`volumed graph` over the API socket, and its log: info lines for config reloads, key-slot changes and volume
phases, `-v` giving volumed's own debug lines and none of the libraries' (cel-python's Activation dumps), no
secret anywhere.

Before, runtime.stats() and graph() could not be read from outside the process, and none of those info lines
existed."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from volumed.cli.api._observe_render import render_prometheus
from volumed.storage import disklayout
from volumed.storage.gpt import new_table, write_partition_table

if TYPE_CHECKING:
    from collections.abc import Iterator

VOLUMED = str(Path(sys.executable).parent / "volumed")
MIB = 1024 * 1024
FAST_PBKDF = {"type": "argon2id", "memory": 32, "iterations": 4, "parallel": 1}
FIRST_SECRET = "first-Pa55phrase-q7"
SECOND_SECRET = "second-Pa55phrase-k2"
THIRD_SECRET = "third-Pa55phrase-z9"


# --- an independent parser of the Prometheus text exposition format (0.0.4) ----------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([^ ]+)$")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    i = 0
    while i < len(text):
        name = _LABEL_NAME.match(text, i)
        assert name is not None, f"bad label name at {i} in {text!r}"
        i = name.end()
        assert text[i : i + 2] == '="', f'expected =" at {i} in {text!r}'
        i += 2
        value: list[str] = []
        while text[i] != '"':
            if text[i] == "\\":
                escaped = text[i + 1]
                assert escaped in '\\"n', f"bad escape \\{escaped} in {text!r}"
                value.append("\n" if escaped == "n" else escaped)
                i += 2
            else:
                value.append(text[i])
                i += 1
        labels[name.group()] = "".join(value)
        i += 1
        if i < len(text):
            assert text[i] == ",", f"expected , at {i} in {text!r}"
            i += 1
    return labels


def parse_prometheus(text: str) -> tuple[dict[str, str], dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    """The TYPE of each family, and every sample by (name, labels); fails on anything malformed."""
    types: dict[str, str] = {}
    helps: dict[str, str] = {}
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in helps
            assert help_text
            helps[name] = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped")
            assert name not in types
            types[name] = kind
        else:
            match = _SAMPLE.match(line)
            assert match is not None, f"not a sample line: {line!r}"
            name, labels, value = match.groups()
            family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
            assert family in types, f"{name} has no TYPE before it"
            assert family in helps, f"{name} has no HELP before it"
            key = (name, frozenset(_labels(labels or "").items()))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = math.inf if value == "+Inf" else float(value)
    return types, samples


def test_prometheus_label_values_are_escaped() -> None:
    name = 'odd "name" \\ with\nnewline'
    stats = {
        "name": name, "wakeups": 1, "reconciles": 2, "errors": 0, "reads": 3, "writes": 4, "queue_length": 0,
        "failure_streak": 0, "reconcile_seconds": 0.25, "reconcile_seconds_max": 0.2, "reconciles_ended": 2,
        "duration_buckets": [[0.1, 1], [1.0, 2]],
    }  # fmt: skip
    text = render_prometheus([stats])
    assert len(text.splitlines()) == 2 * 9 + 8 + 5  # HELP and TYPE of 9 families, 8 series, 5 histogram lines
    types, samples = parse_prometheus(text)
    label = frozenset({("controller", name)})
    assert samples[("volumed_controller_reconciles_total", label)] == 2
    assert samples[("volumed_controller_reconcile_duration_seconds_bucket", label | {("le", "0.1")})] == 1
    assert samples[("volumed_controller_reconcile_duration_seconds_bucket", label | {("le", "+Inf")})] == 2
    assert samples[("volumed_controller_reconcile_duration_seconds_sum", label)] == 0.25
    assert types["volumed_controller_reconcile_duration_seconds"] == "histogram"


# --- a real `volumed run` on image files ----------


def _node(tmp_path: Path) -> tuple[Path, Path]:
    system = tmp_path / "node.img"
    disklayout.create_disk_image(system, 256 * MIB, state_size=16 * MIB)
    data = tmp_path / "data.img"
    with data.open("wb") as image:
        image.truncate(64 * MIB)
    write_partition_table(data, new_table(64 * MIB))
    return system, data


def _user_volume(*keys: dict[str, Any]) -> dict[str, Any]:
    """An encrypted user volume on the data disk, chosen by a CEL selector (not a built-in shortcut)."""
    return {
        "apiVersion": "v1alpha1",
        "kind": "UserVolumeConfig",
        "name": "data",
        "provisioning": {"diskSelector": {"match": "disk.size < 100u * 1024u * 1024u"}, "minSize": "16MiB"},
        "filesystem": {"type": "ext4"},
        "encryption": {"provider": "luks2", "keys": list(keys), "pbkdf": dict(FAST_PBKDF)},
    }


def _static(slot: int, passphrase: str) -> dict[str, Any]:
    return {"slot": slot, "static": {"passphrase": passphrase}}


def _write(path: Path, text: str) -> None:
    """Atomically, so the loader never reads half a file."""
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(text)
    os.replace(staging, path)


def _volumed(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    socket = str(tmp_path / "state" / "api.sock")
    return subprocess.run(
        [VOLUMED, *argv, "--socket", socket], capture_output=True, text=True, timeout=30, check=False
    )


def _wait(what: str, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@contextmanager
def _daemon(tmp_path: Path, config: Path, *extra: str) -> Iterator[Path]:
    """`volumed run` in the background on the images; yields the file its stderr goes to."""
    system, data = _node(tmp_path)
    log = tmp_path / "stderr.log"
    argv = [VOLUMED, "run", "--config", str(config), "--disk", str(system), "--disk", str(data)]
    argv += ["--backend", "fuse", "--root", str(tmp_path / "root"), "--state-dir", str(tmp_path / "state")]
    with log.open("w") as stderr:
        daemon = subprocess.Popen([*argv, *extra], stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    try:
        _wait("the API socket", lambda: _volumed(tmp_path, "get", "volumestatuses").returncode == 0)
        yield log
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    assert daemon.returncode == 0, log.read_text()


def _phase(tmp_path: Path, volume: str) -> str | None:
    shown = _volumed(tmp_path, "get", "volumestatuses", volume, "-o", "json")
    return json.loads(shown.stdout)["spec"]["phase"] if shown.returncode == 0 else None


def _metrics(tmp_path: Path) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    shown = _volumed(tmp_path, "metrics", "-o", "prometheus")
    assert shown.returncode == 0, shown.stderr
    types, samples = parse_prometheus(shown.stdout)
    assert types == {
        "volumed_controller_reconciles_total": "counter",
        "volumed_controller_reconcile_errors_total": "counter",
        "volumed_controller_wakeups_total": "counter",
        "volumed_controller_reads_total": "counter",
        "volumed_controller_writes_total": "counter",
        "volumed_controller_queue_length": "gauge",
        "volumed_controller_failure_streak": "gauge",
        "volumed_controller_reconcile_max_seconds": "gauge",
        "volumed_controller_reconcile_duration_seconds": "histogram",
    }
    return samples


def _sample(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, controller: str
) -> float:
    return samples[(name, frozenset({("controller", controller)}))]


def test_metrics_and_graph_of_a_running_node(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    _write(config, yaml.safe_dump(_user_volume(_static(0, FIRST_SECRET))))
    with _daemon(tmp_path, config):
        _wait("u-data ready", lambda: _phase(tmp_path, "u-data") == "ready")
        before = _metrics(tmp_path)
        reconciles = "volumed_controller_reconciles_total"
        controllers = {dict(labels)["controller"] for name, labels in before if name == reconciles}
        assert {"ConfigLoader", "VolumeFormatter", "KeySlotSyncer", "Mounter"} <= controllers
        for controller in controllers:  # the histogram is cumulative and its +Inf bucket is its count
            buckets = sorted(
                (float(dict(labels)["le"]), value)
                for (name, labels), value in before.items()
                if name == "volumed_controller_reconcile_duration_seconds_bucket"
                and dict(labels)["controller"] == controller
            )
            counts = [value for _bound, value in buckets]
            assert counts == sorted(counts)
            assert buckets[-1][0] == math.inf
            count = _sample(before, "volumed_controller_reconcile_duration_seconds_count", controller)
            assert buckets[-1][1] == count <= _sample(before, reconciles, controller)
        assert _sample(before, reconciles, "VolumeFormatter") >= 1

        # A config change makes the loader and the formatter reconcile again: their counts go up.
        _write(config, yaml.safe_dump(_user_volume(_static(0, FIRST_SECRET), _static(1, SECOND_SECRET))))
        _wait(
            "the loader and the formatter to reconcile again",
            lambda: all(
                _sample(_metrics(tmp_path), reconciles, c) > _sample(before, reconciles, c)
                for c in ("ConfigLoader", "VolumeFormatter", "KeySlotSyncer")
            ),
        )
        after = _metrics(tmp_path)
        for (name, labels), value in before.items():
            if name.endswith(("_total", "_count")):
                assert after[(name, labels)] >= value, name

        table = _volumed(tmp_path, "metrics")
        assert table.returncode == 0, table.stderr
        header = table.stdout.splitlines()[0].split()
        assert header[:3] == ["CONTROLLER", "RECONCILES", "ERRORS"]
        assert {line.split()[0] for line in table.stdout.splitlines()[1:]} == controllers

        graph = _volumed(tmp_path, "graph")
        assert graph.returncode == 0, graph.stderr
        assert "ConfigLoader\n  writes block/VolumeConfigs.block.volumed.dev (shared)\n" in graph.stdout
        assert "  reads  block/VolumeConfigs.block.volumed.dev (weak)" in graph.stdout
        dot = _volumed(tmp_path, "graph", "-o", "dot")
        assert dot.stdout.startswith("digraph volumed {")
        assert dot.stdout.rstrip().endswith("}")
        assert '[shape=box, label="VolumeFormatter"];' in dot.stdout
        shown = table.stdout + graph.stdout + dot.stdout + repr(after)
        for secret in (FIRST_SECRET, SECOND_SECRET):
            assert secret not in shown


def _lines(log: Path, *needles: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if all(needle in line for needle in needles)]


def test_the_log_of_a_run_with_reloads_and_key_slot_changes(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    _write(config, yaml.safe_dump(_user_volume(_static(0, FIRST_SECRET))))
    with _daemon(tmp_path, config, "-v") as log:
        _wait("u-data ready", lambda: _phase(tmp_path, "u-data") == "ready")
        _wait("the phase line", lambda: _lines(log, "volume phase changed", "volume=u-data", "-> ready"))
        # Slot 1 added: enrolled.
        _write(config, yaml.safe_dump(_user_volume(_static(0, FIRST_SECRET), _static(1, SECOND_SECRET))))
        _wait("slot 1 enrolled", lambda: _lines(log, "key slot enrolled", "slot=1", "volume=u-data"))
        # Slot 1 with another key, slot 0 dropped: replaced, then removed.
        _write(config, yaml.safe_dump(_user_volume(_static(1, THIRD_SECRET))))
        _wait("slot 0 removed", lambda: _lines(log, "key slot removed", "slot=0", "volume=u-data"))
        # An invalid config: refused with its reason.
        _write(
            config, "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: data\nprovisioning: {minSize: 1XB}\n"
        )
        _wait("the refusal", lambda: _lines(log, "machine config is invalid"))
    text = log.read_text()

    applied = _lines(log, "[info", "machine config applied", "controller=ConfigLoader", "documents=1")
    assert len(applied) == 3, text  # the first config and the two reloads
    assert _lines(log, "[info", "key slot enrolled", "kind=static", "slot=1", "volume=u-data")
    assert _lines(log, "[info", "key slot replaced", "kind=static", "slot=1", "volume=u-data")
    assert _lines(log, "[info", "key slot removed", "slot=0", "volume=u-data")
    [refused] = _lines(log, "[warning", "machine config is invalid")
    for part in ("errors=", "reason=", "provisioning.minSize"):  # the count: Talos' rules, which grow
        assert part in refused, refused
    assert _lines(log, "[info", "volume phase changed", "-> ready'", "volume=u-data")

    # -v: volumed's own debug lines, none of the libraries' (cel-python evaluated the selector meanwhile).
    assert _lines(log, "[debug", "reconciled", "controller=VolumeFormatter")
    assert "Activation" not in text
    assert "Using selector" not in text  # asyncio's debug line
    for line in text.splitlines():
        assert line.startswith("20"), f"a line not from volumed's structlog: {line!r}"
    for secret in (FIRST_SECRET, SECOND_SECRET, THIRD_SECRET):
        assert secret not in text
