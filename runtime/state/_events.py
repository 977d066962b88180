"""Watch events."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, final

from volumed.runtime._frozen import draft_class

if TYPE_CHECKING:
    from volumed.runtime.resource import Resource

    from ._errors import StateError


class EventType(StrEnum):
    """What happened (cosi's watch event types)."""

    CREATED = "created"
    UPDATED = "updated"
    DESTROYED = "destroyed"
    BOOTSTRAPPED = "bootstrapped"
    ERRORED = "errored"
    NOOP = "noop"


@final
@dataclass(frozen=True, slots=True)
class Event:
    """One watch event; events and their resources are shared between watchers, never copied.

    - CREATED / UPDATED: ``resource`` is the new value; UPDATED also has ``old``.
    - DESTROYED: ``resource`` is the last value (for a query watch whose match flipped, the value that no
      longer matches, with ``old`` the last matching one).
    - BOOTSTRAPPED: no resource; ends the initial listing of a kind watch.
    - NOOP: no resource; the first event of a single-resource watch when the resource does not exist.
    - ERRORED: ``error`` says why the watch ended (it is the last event).
    """

    type: EventType
    resource: Resource[Any] | None = None
    old: Resource[Any] | None = None
    error: StateError | None = None


_EventDraft = draft_class(Event)
_new = object.__new__


def make_event(type: EventType, resource: Resource[Any], old: Resource[Any] | None = None) -> Event:
    """A CREATED/UPDATED/DESTROYED event, built without the dataclass ``__init__`` (one per write)."""
    event: Any = _new(_EventDraft)
    event.type = type
    event.resource = resource
    event.old = old
    event.error = None
    event.__class__ = Event
    return event  # type: ignore[no-any-return]
