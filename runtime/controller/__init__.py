"""Controllers: declared inputs/outputs, the runtime that runs them, queues, backoff, metrics, graphs."""

from ._backoff import Backoff as Backoff
from ._backoff import BackoffPolicy as BackoffPolicy
from ._graph import ControllerNode as ControllerNode
from ._graph import DependencyGraph as DependencyGraph
from ._io import Input as Input
from ._io import InputKind as InputKind
from ._io import Output as Output
from ._io import OutputKind as OutputKind
from ._metrics import ControllerMetrics as ControllerMetrics
from ._metrics import ControllerStats as ControllerStats
from ._queue import KeyedQueue as KeyedQueue
from ._signal import WakeSignal as WakeSignal

__all__ = [
    "Backoff",
    "BackoffPolicy",
    "ControllerMetrics",
    "ControllerNode",
    "ControllerStats",
    "DependencyGraph",
    "Input",
    "InputKind",
    "KeyedQueue",
    "Output",
    "OutputKind",
    "WakeSignal",
]
