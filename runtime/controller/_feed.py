"""One watch per resource kind, fanned out to every controller interested in it.

The runtime opens a single `watch_kind` per (namespace, type) however many controllers read it, and routes
each event to the subscriptions whose filter accepts it. A subscription either notifies a whole controller
(its coalescing signal) or maps the resource onto keys of a queue controller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

from volumed.runtime.resource import Phase
from volumed.runtime.state import EventType

from ._io import Input, InputKind

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import structlog

    from volumed.runtime.resource import Resource
    from volumed.runtime.state import EventStream


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
    """One controller's interest in one kind: a filter and what to do when it passes."""

    __slots__ = ("input", "notify", "owner")

    def __init__(
        self, owner: str, inp: Input | None, notify: Callable[[Resource[Any]], Awaitable[None] | None]
    ) -> None:
        self.owner = owner
        self.input = inp
        self.notify = notify


@final
class KindFeed:
    """The watch of one kind and its subscriptions (subscriptions may be added while it runs)."""

    __slots__ = ("_logger", "_stream", "subscriptions")

    def __init__(self, stream: EventStream, logger: structlog.typing.FilteringBoundLogger) -> None:
        self._stream = stream
        self._logger = logger
        self.subscriptions: list[Subscription] = []

    async def run(self) -> None:
        """Dispatch events until cancelled or the state closes the watch."""
        async with self._stream as stream:
            async for event in stream:
                event_type = event.type
                resource = event.resource
                if resource is None:
                    if event_type is EventType.ERRORED:
                        self._logger.error("watch ended by the state", error=str(event.error))
                        return
                    continue  # BOOTSTRAPPED / NOOP carry nothing to react to
                for sub in self.subscriptions:
                    if wakes(sub.input, sub.owner, event_type, resource):
                        pending = sub.notify(resource)
                        if pending is not None:
                            await pending
