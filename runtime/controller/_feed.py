"""One listener per resource kind, fanned out to every controller interested in it.

The runtime listens to each (namespace, type) once, however many controllers read it: the state calls the
dispatcher synchronously with every committed event, and it hands the resource to the subscriptions whose
filter accepts it. A subscription either notifies a whole controller (its coalescing signal) or puts keys on
a queue controller's queue. Nothing here waits: a listener cannot fall behind, so no change is ever lost or
has to be resynchronised, and no task or event-loop trip sits between a write and the queues it feeds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

from volumed.runtime.resource import Phase
from volumed.runtime.state import EventType

from ._errors import failure_text
from ._io import Input, InputKind

if TYPE_CHECKING:
    from collections.abc import Callable

    import structlog

    from volumed.runtime.resource import Resource
    from volumed.runtime.state import Event


def wakes(inp: Input | None, owner: str, event_type: EventType, resource: Resource[Any]) -> bool:
    """Whether a change of ``resource`` concerns a subscription.

    ``inp`` None is the implicit subscription of a controller to its own outputs: it is woken when one it owns
    has finished tearing down (no finalizers left), so its cleanup can destroy it without declaring anything.
    """
    md = resource.metadata
    if inp is None:
        return (
            event_type is not EventType.DESTROYED
            and md.owner == owner
            and md.phase is Phase.TEARING_DOWN
            and not md.finalizers
        )
    if inp.id is not None and md.id != inp.id:
        return False
    if inp.kind is InputKind.DESTROY_READY:
        return event_type is not EventType.DESTROYED and md.phase is Phase.TEARING_DOWN and not md.finalizers
    return True


@final
class Subscription:
    """One controller's interest in one kind: a filter and what to do when it passes (never blocks)."""

    __slots__ = ("always", "input", "notify", "owner")

    def __init__(self, owner: str, inp: Input | None, notify: Callable[[Event], None]) -> None:
        self.owner = owner
        self.input = inp
        self.notify = notify
        # A weak or strong input of a whole type wants every change: no filter to run per event.
        self.always = inp is not None and inp.id is None and inp.kind is not InputKind.DESTROY_READY


@final
class KindFeed:
    """The dispatcher of one kind's events to its subscriptions (subscriptions may be added while it runs)."""

    __slots__ = ("_logger", "stop", "subscriptions")

    def __init__(self, logger: structlog.typing.FilteringBoundLogger) -> None:
        self._logger = logger
        self.subscriptions: list[Subscription] = []
        self.stop: Callable[[], None] | None = None  # set once the state listens

    def dispatch(self, event: Event) -> None:
        """Route one committed event (called by the state inside the write)."""
        resource = event.resource
        if resource is None:
            return
        event_type = event.type
        for sub in self.subscriptions:
            if sub.always or wakes(sub.input, sub.owner, event_type, resource):
                try:
                    sub.notify(event)
                except Exception as exc:  # one controller's bug must not keep the change from the others
                    self._logger.error(
                        "dispatch failed",
                        controller=sub.owner,
                        resource=str(resource.pointer),
                        error=failure_text(exc),
                    )
