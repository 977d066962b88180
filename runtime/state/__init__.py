"""State: the protocols, the error hierarchy, watch events and streams, derived operations and backends."""

import typing as _typing

from volumed._lazy import lazy_attributes as _lazy_attributes

from ._errors import AlreadyExistsError as AlreadyExistsError
from ._errors import ConflictError as ConflictError
from ._errors import InvalidResourceError as InvalidResourceError
from ._errors import NotFoundError as NotFoundError
from ._errors import OwnerConflictError as OwnerConflictError
from ._errors import PendingFinalizersError as PendingFinalizersError
from ._errors import PhaseConflictError as PhaseConflictError
from ._errors import SensitiveResourceError as SensitiveResourceError
from ._errors import StateClosedError as StateClosedError
from ._errors import StateError as StateError
from ._events import Event as Event
from ._events import EventType as EventType
from ._factory import in_memory_state as in_memory_state
from ._guard import SensitiveGuard as SensitiveGuard
from ._index import DEFAULT_HISTORY as DEFAULT_HISTORY
from ._protocols import CoreState as CoreState
from ._protocols import State as State
from ._protocols import StateReader as StateReader
from ._protocols import StateWriter as StateWriter
from ._protocols import UpdateFn as UpdateFn
from ._router import NamespacedRouter as NamespacedRouter
from ._watch import EventStream as EventStream
from ._wrap import WrappedState as WrappedState
from .inmem import InMemoryCore as InMemoryCore

if _typing.TYPE_CHECKING:
    from .sqlite import SqliteCore as SqliteCore

# The sqlite backend (and the sqlite3 module) is imported when first used: a run on the in-memory state
# never loads it.
__getattr__ = _lazy_attributes(__name__, {"SqliteCore": ".sqlite"})

__all__ = [
    "DEFAULT_HISTORY",
    "AlreadyExistsError",
    "ConflictError",
    "CoreState",
    "Event",
    "EventStream",
    "EventType",
    "InMemoryCore",
    "InvalidResourceError",
    "NamespacedRouter",
    "NotFoundError",
    "OwnerConflictError",
    "PendingFinalizersError",
    "PhaseConflictError",
    "SensitiveGuard",
    "SensitiveResourceError",
    "SqliteCore",
    "State",
    "StateClosedError",
    "StateError",
    "StateReader",
    "StateWriter",
    "UpdateFn",
    "WrappedState",
    "in_memory_state",
]
