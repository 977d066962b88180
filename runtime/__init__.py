"""The generic reconciliation framework: resources, state, watches, controllers. Knows nothing of disks."""

import typing as _typing

from volumed._lazy import lazy_attributes as _lazy_attributes

# --- controllers (controller runtime; isort puts them first) -------------------------------------------
from .controller import BackoffPolicy as BackoffPolicy
from .controller import Controller as Controller
from .controller import ControllerContext as ControllerContext
from .controller import ControllerError as ControllerError
from .controller import ControllerReader as ControllerReader
from .controller import ControllerStats as ControllerStats
from .controller import DependencyGraph as DependencyGraph
from .controller import EventSource as EventSource
from .controller import Input as Input
from .controller import InputKind as InputKind
from .controller import Output as Output
from .controller import OutputKind as OutputKind
from .controller import QController as QController
from .controller import RegistrationError as RegistrationError
from .controller import RequeueError as RequeueError
from .controller import Runtime as Runtime
from .controller import UndeclaredAccessError as UndeclaredAccessError
from .controller import Wake as Wake

# --- resources and state (runtime core) -------------------------------------------------------------------
from .resource import EPOCH as EPOCH
from .resource import DefinitionConflictError as DefinitionConflictError
from .resource import FrozenMap as FrozenMap
from .resource import IDQuery as IDQuery
from .resource import Kind as Kind
from .resource import LabelOp as LabelOp
from .resource import LabelQuery as LabelQuery
from .resource import LabelTerm as LabelTerm
from .resource import Metadata as Metadata
from .resource import Phase as Phase
from .resource import Pointer as Pointer
from .resource import PrintColumn as PrintColumn
from .resource import Resource as Resource
from .resource import ResourceDefinition as ResourceDefinition
from .resource import ResourceRegistry as ResourceRegistry
from .resource import SensitiveSpec as SensitiveSpec
from .resource import Spec as Spec
from .resource import UnknownResourceTypeError as UnknownResourceTypeError
from .state import AlreadyExistsError as AlreadyExistsError
from .state import ConflictError as ConflictError
from .state import CoreState as CoreState
from .state import Event as Event
from .state import EventStream as EventStream
from .state import EventType as EventType
from .state import InMemoryCore as InMemoryCore
from .state import InvalidResourceError as InvalidResourceError
from .state import NamespacedRouter as NamespacedRouter
from .state import NotFoundError as NotFoundError
from .state import OwnerConflictError as OwnerConflictError
from .state import PendingFinalizersError as PendingFinalizersError
from .state import PhaseConflictError as PhaseConflictError
from .state import SensitiveGuard as SensitiveGuard
from .state import SensitiveResourceError as SensitiveResourceError
from .state import State as State
from .state import StateClosedError as StateClosedError
from .state import StateError as StateError
from .state import StateReader as StateReader
from .state import StateWriter as StateWriter
from .state import WrappedState as WrappedState
from .state import in_memory_state as in_memory_state

__all__ = [
    # --- resources and state (runtime core) ---
    "EPOCH",
    "AlreadyExistsError",
    "ConflictError",
    "CoreState",
    "DefinitionConflictError",
    "Event",
    "EventStream",
    "EventType",
    "FrozenMap",
    "IDQuery",
    "InMemoryCore",
    "InvalidResourceError",
    "Kind",
    "LabelOp",
    "LabelQuery",
    "LabelTerm",
    "Metadata",
    "NamespacedRouter",
    "NotFoundError",
    "OwnerConflictError",
    "PendingFinalizersError",
    "Phase",
    "PhaseConflictError",
    "Pointer",
    "PrintColumn",
    "Resource",
    "ResourceDefinition",
    "ResourceRegistry",
    "SensitiveGuard",
    "SensitiveResourceError",
    "SensitiveSpec",
    "Spec",
    "SqliteCore",
    "State",
    "StateClosedError",
    "StateError",
    "StateReader",
    "StateWriter",
    "UnknownResourceTypeError",
    "WrappedState",
    "in_memory_state",
    # --- controllers (controller runtime): appended below this line ---
]

# --- controllers (controller runtime) ---
__all__ += [
    "BackoffPolicy",
    "Controller",
    "ControllerContext",
    "ControllerError",
    "ControllerReader",
    "ControllerStats",
    "DependencyGraph",
    "EventSource",
    "Input",
    "InputKind",
    "Output",
    "OutputKind",
    "QController",
    "RegistrationError",
    "RequeueError",
    "Runtime",
    "UndeclaredAccessError",
    "Wake",
]

if _typing.TYPE_CHECKING:
    from .state import SqliteCore as SqliteCore

# The sqlite state backend is imported when first used (see volumed.runtime.state).
__getattr__ = _lazy_attributes(__name__, {"SqliteCore": ".state"})
