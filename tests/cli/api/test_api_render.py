"""Rendering of resources: cells, print-column paths, tables, YAML documents, JSON, watch output."""

from __future__ import annotations

import json

import yaml

from volumed.cli.api import TypeInfo, WatchEvent, WatchPrinter, render_json, render_table, render_yaml
from volumed.cli.api._render import cell, column_value

INFO = TypeInfo(
    type="Things.test.volumed.dev",
    namespace="test",
    aliases=(),
    print_columns=(("Name", "name"), ("Deep", "a.b"), ("Tags", "tags"), ("On", "on")),
)


def thing(id: str, version: int = 1, **spec: object) -> dict[str, object]:
    return {"metadata": {"namespace": "test", "id": id, "version": version}, "spec": spec}


def test_cells() -> None:
    assert cell(None) == ""
    assert cell(True) == "true"
    assert cell(False) == "false"
    assert cell(0) == "0"
    assert cell([1, "a", None]) == "1,a,"
    assert cell({"b": 1, "a": [2]}) == '{"a":[2],"b":1}'
    assert column_value({"a": {"b": "deep"}}, "a.b") == "deep"
    assert column_value({"a": None}, "a.b") == ""
    assert column_value({}, "missing") == ""


def test_table() -> None:
    items = [thing("one", name="x", a={"b": 3}, tags=["p", "q"], on=True), thing("two", 12, name="long name")]
    assert render_table(INFO, items) == (
        "NAMESPACE  ID   VERSION  NAME       DEEP  TAGS  ON\n"
        "test       one  1        x          3     p,q   true\n"
        "test       two  12       long name"
    )


def test_table_keeps_wide_values_whole() -> None:
    wide = "e" * 300
    table = render_table(INFO, [thing("one", name=wide)])
    assert table.splitlines()[1] == f"test       one  1        {wide}"


def test_yaml_and_json_documents() -> None:
    items = [thing("one", name="x"), thing("two", name="y")]
    assert list(yaml.safe_load_all(render_yaml(items))) == items
    assert render_yaml(items).startswith("---\nmetadata:\n  namespace: test\n  id: one\n")
    assert render_json(items) == "\n".join(json.dumps(item, indent=2) for item in items)


def test_watch_printer_table_holds_the_bootstrap_back() -> None:
    printer = WatchPrinter(INFO, "table")
    assert printer.feed(WatchEvent("created", thing("one", name="x"))) is None
    assert printer.feed(WatchEvent("created", thing("three", name="a longer one"))) is None
    assert printer.feed(WatchEvent("bootstrapped")) == (
        "EVENT    NAMESPACE  ID     VERSION  NAME          DEEP  TAGS  ON\n"
        "CREATED  test       one    1        x\n"
        "CREATED  test       three  1        a longer one"
    )
    assert printer.feed(WatchEvent("destroyed", thing("one", 2, name="x"))) == (
        "DESTROYED  test       one    2        x"
    )


def test_watch_printer_empty_bootstrap_prints_the_header() -> None:
    printer = WatchPrinter(INFO, "table")
    assert printer.feed(WatchEvent("bootstrapped")) == "EVENT  NAMESPACE  ID  VERSION  NAME  DEEP  TAGS  ON"


def test_watch_printer_yaml_and_json() -> None:
    event = WatchEvent("updated", thing("one", 2, name="x"))
    assert json.loads(str(WatchPrinter(INFO, "json").feed(event))) == {
        "event": "updated",
        **thing("one", 2, name="x"),
    }
    assert WatchPrinter(INFO, "json").feed(WatchEvent("bootstrapped")) == '{"event":"bootstrapped"}'
    assert str(WatchPrinter(INFO, "yaml").feed(event)).startswith("---\nevent: updated\nmetadata:\n")


def test_graph_text_and_metrics_escape_control_characters() -> None:
    """Names come from the daemon: a newline or an escape sequence in them must not forge a line of `volumed
    graph` or drive the terminal (the review forged 'writes block/VolumeStatuses...' with one)."""
    from volumed.cli.api._observe_render import render_graph_text, render_prometheus, render_stats_table

    forged = "Ws\n  writes block/VolumeStatuses.block.volumed.dev (exclusive)\x1b]0;pwned\x07"
    name = 'we"ird\\na\nme\x1b[31mRED\x1b[0m'
    graph = render_graph_text(
        [
            {
                "name": name,
                "inputs": [{"namespace": "app\r", "type": forged, "kind": "strong", "id": "i\x1b"}],
                "outputs": [{"namespace": "app", "type": "Xs\x00", "kind": "shared\x1b"}],
            }
        ]
    )
    assert graph.splitlines() == [
        'we"ird\\na\\nme\\x1b[31mRED\\x1b[0m',
        "  reads  app\\r/Ws\\n  writes block/VolumeStatuses.block.volumed.dev (exclusive)\\x1b]0;pwned\\x07 "
        "(strong id=i\\x1b)",
        "  writes app/Xs\\x00 (shared\\x1b)",
    ]
    stats = {
        "name": name, "wakeups": 1, "reconciles": 2, "errors": 0, "reads": 3, "writes": 4, "queue_length": 0,
        "failure_streak": 0, "reconcile_seconds": 0.25, "reconcile_seconds_max": 0.2, "reconciles_ended": 2,
        "duration_buckets": [[0.1, 1]],
    }  # fmt: skip
    for text in (render_prometheus([stats]), render_stats_table([stats])):
        assert all(line.isprintable() for line in text.splitlines()), text
    prometheus = render_prometheus([stats])
    assert 'controller="we\\"ird\\\\na\\nme\\\\x1b[31mRED\\\\x1b[0m"' in prometheus
