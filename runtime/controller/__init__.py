"""Controllers: declared inputs/outputs and event sources, the runtime that runs them, queues, backoff,
metrics, graphs."""

from ._backoff import Backoff as Backoff
from ._backoff import BackoffPolicy as BackoffPolicy
from ._context import ControllerContext as ControllerContext
from ._controller import Controller as Controller
from ._controller import QController as QController
from ._errors import ControllerError as ControllerError
from ._errors import RegistrationError as RegistrationError
from ._errors import RequeueError as RequeueError
from ._errors import UndeclaredAccessError as UndeclaredAccessError
from ._errors import failure_text as failure_text
from ._errors import passes_through as passes_through
from ._graph import ControllerNode as ControllerNode
from ._graph import DependencyGraph as DependencyGraph
from ._io import Input as Input
from ._io import InputKind as InputKind
from ._io import Output as Output
from ._io import OutputKind as OutputKind
from ._metrics import ControllerMetrics as ControllerMetrics
from ._metrics import ControllerStats as ControllerStats
from ._queue import KeyedQueue as KeyedQueue
from ._reader import ControllerReader as ControllerReader
from ._runtime import Runtime as Runtime
from ._signal import WakeSignal as WakeSignal
from ._source import EventSource as EventSource
from ._source import Wake as Wake

__all__ = [
    "Backoff",
    "BackoffPolicy",
    "Controller",
    "ControllerContext",
    "ControllerError",
    "ControllerMetrics",
    "ControllerNode",
    "ControllerReader",
    "ControllerStats",
    "DependencyGraph",
    "EventSource",
    "Input",
    "InputKind",
    "KeyedQueue",
    "Output",
    "OutputKind",
    "QController",
    "RegistrationError",
    "RequeueError",
    "Runtime",
    "UndeclaredAccessError",
    "Wake",
    "WakeSignal",
    "failure_text",
    "passes_through",
]
