"""How `volumed metrics` and `volumed graph` print the runtime's counters and dependency graph: a table, the
Prometheus text exposition format, or the graph as indented text. The client's half: plain stdlib (the
table through cli/_columns), so the commands start fast."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

from volumed.cli._columns import printable

from ._render import column_widths, render_rows

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._wire import WireObject

PREFIX: Final = "volumed_controller_"

# (metric suffix, wire field, Prometheus type, help text), in output order; the histogram comes after them.
_SERIES: Final = (
    ("reconciles_total", "reconciles", "counter", "Reconciles started (one per key for queue controllers)."),
    ("reconcile_errors_total", "errors", "counter", "Reconciles that failed or asked to requeue."),
    ("wakeups_total", "wakeups", "counter", "Input changes that notified the controller."),
    ("reads_total", "reads", "counter", "Get and list calls made by the controller."),
    ("writes_total", "writes", "counter", "Changes to the state made by the controller."),
    ("queue_length", "queue_length", "gauge", "Keys (or a wake-up) waiting for the controller."),
    ("failure_streak", "failure_streak", "gauge", "Consecutive failures of the controller now."),
    ("reconcile_max_seconds", "reconcile_seconds_max", "gauge", "The longest reconcile so far, in seconds."),
)
_DURATION: Final = "reconcile_duration_seconds"


def escape_label(value: str) -> str:
    """A label value as the exposition format quotes it: backslash, double quote and newline escaped; any
    other control character written as its Python escape (``\\x1b`` as text), so no terminal sees it."""
    quoted = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    if quoted.isprintable():
        return quoted
    return "".join(c if c.isprintable() else printable(c).replace("\\", "\\\\") for c in quoted)


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, float):
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)
    return str(value)


def render_prometheus(controllers: Sequence[WireObject]) -> str:
    """The counters in the Prometheus text exposition format (version 0.0.4), one series per controller."""
    lines: list[str] = []
    for suffix, field, kind, help_text in _SERIES:
        name = PREFIX + suffix
        lines += [f"# HELP {name} {_escape_help(help_text)}", f"# TYPE {name} {kind}"]
        for c in controllers:
            lines.append(f'{name}{{controller="{escape_label(str(c["name"]))}"}} {_number(c[field])}')
    name = PREFIX + _DURATION
    lines += [f"# HELP {name} How long reconciles took, in seconds.", f"# TYPE {name} histogram"]
    for c in controllers:
        label = f'controller="{escape_label(str(c["name"]))}"'
        for bound, count in c["duration_buckets"]:
            lines.append(f'{name}_bucket{{{label},le="{_number(float(bound))}"}} {_number(count)}')
        lines.append(f'{name}_bucket{{{label},le="+Inf"}} {_number(c["reconciles_ended"])}')
        lines.append(f"{name}_sum{{{label}}} {_number(float(c['reconcile_seconds']))}")
        lines.append(f"{name}_count{{{label}}} {_number(c['reconciles_ended'])}")
    return "\n".join(lines) + "\n"


_STATS_HEADER: Final = (
    "CONTROLLER", "RECONCILES", "ERRORS", "STREAK", "WAKEUPS", "READS", "WRITES", "QUEUE", "TOTAL S",
    "AVG MS", "MAX MS",
)  # fmt: skip


def render_stats_table(controllers: Sequence[WireObject]) -> str:
    """One row per controller: counts, the failure streak, the queue and reconcile durations."""
    rows = []
    for c in controllers:
        ended = int(c["reconciles_ended"])
        seconds = float(c["reconcile_seconds"])
        average = f"{1000 * seconds / ended:.1f}" if ended else ""
        counts = (c["reconciles"], c["errors"], c["failure_streak"], c["wakeups"], c["reads"], c["writes"])
        rows.append(
            [
                str(c["name"]),
                *(str(int(n)) for n in counts),
                str(int(c["queue_length"])),
                f"{seconds:.3f}",
                average,
                f"{1000 * float(c['reconcile_seconds_max']):.1f}",
            ]
        )
    return render_rows(_STATS_HEADER, rows, column_widths(_STATS_HEADER, rows))


def render_graph_text(controllers: Sequence[WireObject]) -> str:
    """Each controller with the types it reads (and how) and writes (shared or exclusive), in run order."""
    lines: list[str] = []
    for c in controllers:  # names escaped: a newline in one must not forge a line (nor \x1b drive a tty)
        lines.append(_text(c["name"]))
        for i in c["inputs"]:
            only = f" id={_text(i['id'])}" if i.get("id") is not None else ""
            lines.append(f"  reads  {_text(i['namespace'])}/{_text(i['type'])} ({_text(i['kind'])}{only})")
        for o in c["outputs"]:
            lines.append(f"  writes {_text(o['namespace'])}/{_text(o['type'])} ({_text(o['kind'])})")
    return "\n".join(lines)


def _text(value: object) -> str:
    return printable(str(value))
