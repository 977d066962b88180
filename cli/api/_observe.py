"""The server's half of ``stats`` and ``graph``: the runtime's counters and dependency graph as wire objects.

Only controller names, resource type names, namespaces and numbers go out: no resource value, no error text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from volumed.runtime.controller import ControllerStats, DependencyGraph

    from ._wire import WireObject


class Observable(Protocol):
    """What the server reads from a runtime (`volumed.runtime.controller.Runtime` is one)."""

    def stats(self) -> Mapping[str, ControllerStats]: ...

    def graph(self) -> DependencyGraph: ...


def stats_to_wire(stats: Iterable[ControllerStats]) -> WireObject:
    """``{"controllers": [{name, counters..., duration_buckets: [[le, count], ...]}, ...]}``, in order."""
    return {
        "controllers": [
            {
                "name": s.name,
                "wakeups": s.wakeups,
                "reconciles": s.reconciles,
                "errors": s.errors,
                "reads": s.reads,
                "writes": s.writes,
                "queue_length": s.queue_length,
                "failure_streak": s.failure_streak,
                "reconcile_seconds": s.reconcile_seconds,
                "reconcile_seconds_max": s.reconcile_seconds_max,
                "reconciles_ended": s.reconciles_ended,
                "duration_buckets": [[bound, count] for bound, count in s.duration_buckets],
            }
            for s in stats
        ]
    }


def graph_to_wire(graph: DependencyGraph) -> WireObject:
    """``{"controllers": [{name, inputs: [...], outputs: [...]}], "dot": TEXT, "mermaid": TEXT}``."""
    return {
        "controllers": [
            {
                "name": node.name,
                "inputs": [
                    {"namespace": i.namespace, "type": i.type, "kind": i.kind.value, "id": i.id}
                    for i in node.inputs
                ],
                "outputs": [
                    {"namespace": o.namespace, "type": o.type, "kind": o.kind.value} for o in node.outputs
                ],
            }
            for node in graph.controllers
        ],
        "dot": graph.to_dot(),
        "mermaid": graph.to_mermaid(),
    }
