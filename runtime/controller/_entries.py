"""What the runtime keeps per registered controller: its rules, counters, logger and wake-up mechanism."""

from __future__ import annotations

import abc
import traceback
from typing import TYPE_CHECKING, Any, final

import structlog

from ._access import AccessRules
from ._controller import Controller, QController
from ._errors import failure_text, passes_through
from ._metrics import ControllerMetrics
from ._queue import KeyedQueue
from ._reader import ControllerReader
from ._signal import WakeSignal

if TYPE_CHECKING:
    import random

    from volumed.runtime.resource import Pointer, Resource
    from volumed.runtime.state import Event, State

    from ._backoff import BackoffPolicy

Logger = structlog.typing.FilteringBoundLogger


def traceback_text(exc: BaseException) -> str:
    """The traceback of a failed reconcile, for the log.

    Passed as the ``exception`` field rather than ``exc_info``: structlog's console renderer then prints it
    as is, whereas with ``exc_info`` it may render frame locals (rich's ``show_locals``), and locals can
    hold secrets.
    """
    return "".join(traceback.format_exception(exc))


class ControllerEntry(abc.ABC):
    """A registered controller and what the runtime derived from its declarations."""

    __slots__ = ("controller", "logger", "metrics", "name", "quiet_failures", "rules")

    def __init__(self, controller: Controller | QController, logger: Logger) -> None:
        self.controller = controller
        self.quiet_failures = 0  # failures of a streak logged at debug level before they show as warnings
        self.name = controller.name
        self.rules = AccessRules(controller.name, controller.inputs, controller.outputs)
        self.metrics = ControllerMetrics(controller.name)
        self.logger = logger.bind(controller=controller.name)

    def log_failure(self, streak: int, event: str, **fields: object) -> None:
        """Log a failed reconcile: at debug level while the streak is short (boot noise), else a warning."""
        if streak <= self.quiet_failures:
            self.logger.debug(event, failures=streak, **fields)
        else:
            self.logger.warning(event, failures=streak, **fields)

    @abc.abstractmethod
    def wake(self, *keys: Pointer) -> None:
        """Wake the controller from one of its event sources (see `EventSource`)."""


@final
class WholeEntry(ControllerEntry):
    """A `Controller`: input changes notify its coalescing signal."""

    __slots__ = ("signal",)

    def __init__(self, controller: Controller, logger: Logger) -> None:
        super().__init__(controller, logger)
        self.signal = WakeSignal()
        self.metrics.track_queue(lambda: int(self.signal.pending))

    def notify(self, _event: Event) -> None:
        self.metrics.wakeups += 1
        self.signal.notify()

    def wake(self, *_keys: Pointer) -> None:
        """An event source's wake-up: the same coalesced signal as input changes (keys mean nothing here)."""
        self.metrics.wakeups += 1
        self.signal.notify()


@final
class QueueEntry(ControllerEntry):
    """A `QController`: input changes are mapped onto keys of its queue."""

    __slots__ = ("mapping", "primary_only", "queue", "reader", "to_map")

    def __init__(
        self,
        controller: QController,
        logger: Logger,
        state: State,
        backoff: BackoffPolicy,
        rng: random.Random | None,
    ) -> None:
        super().__init__(controller, logger)
        self.queue: KeyedQueue[Pointer] = KeyedQueue(backoff, rng=rng)
        self.reader = ControllerReader(state, self.rules, self.metrics, self.logger)
        # Without a custom mapping every change maps to its own pointer, right in the dispatch.
        self.primary_only = type(controller).map_input is QController.map_input
        # With one, changed resources wait here for the mapping task (map_input is async; the dispatch cannot
        # wait), merged per resource (see _PendingValues): bounded by the resources, not by the changes.
        self.to_map: dict[Pointer, _PendingValues] = {}
        self.mapping = WakeSignal()
        self.metrics.track_queue(lambda: len(self.queue) + self.queue.delayed + len(self.to_map))

    def wake(self, *keys: Pointer) -> None:
        """An event source's wake-up: ``keys`` go into the queue as they are (no ``map_input``)."""
        if not keys:
            raise ValueError(
                f"controller {self.name!r} is a QController: its event sources must name the keys to "
                "reconcile, wake(pointer, ...)"
            )
        self.metrics.wakeups += 1
        for key in keys:
            self.queue.put(key)

    def notify_primary(self, event: Event) -> None:
        self.metrics.wakeups += 1
        resource = event.resource
        assert resource is not None
        self.queue.put(resource.pointer)

    def notify(self, event: Event) -> None:
        self.metrics.wakeups += 1
        resource = event.resource
        assert resource is not None
        pointer = resource.pointer
        pending = self.to_map.get(pointer)
        if pending is None:
            self.to_map[pointer] = _PendingValues(event)
        else:
            pending.add(event)
        self.mapping.notify()

    async def map_changes(self) -> None:
        """Run ``map_input`` on every changed resource handed over by `notify`, until cancelled."""
        controller = self.controller
        assert isinstance(controller, QController)
        to_map = self.to_map
        put = self.queue.put
        while True:
            await self.mapping.wait()
            while to_map:
                for resource in to_map.pop(next(iter(to_map))).values:
                    try:
                        keys = await controller.map_input(self.reader, resource)
                        for key in keys:  # in the try: not iterable, or a key that is not hashable
                            put(key)
                    except BaseException as exc:  # a bad mapping drops this change only
                        if passes_through(exc):
                            raise
                        self.metrics.errors += 1
                        self.logger.error(
                            "map_input failed; change dropped",
                            resource=str(resource.pointer),
                            error=failure_text(exc),
                        )


@final
class _PendingValues:
    """The values of one changed resource that ``map_input`` still has to see, in order.

    The keys a change concerns are those of the value before it and of the value after it (a resource that
    moves from one key to another wakes both, as controller-runtime's map functions see old and new). Every
    value a resource takes while the mapping task is busy is kept, not only the latest: a reconcile may have
    read an intermediate value meanwhile (a requeue or a retry), and the key it belonged to must learn that
    it changed again. Consecutive updates are collapsed only when they are the same value. So this grows
    with the changes made while ``map_input`` lags, and is emptied as soon as it catches up.
    """

    __slots__ = ("values",)

    def __init__(self, event: Event) -> None:
        resource = event.resource
        assert resource is not None
        self.values: list[Resource[Any]] = [resource] if event.old is None else [event.old, resource]

    def add(self, event: Event) -> None:
        resource = event.resource
        assert resource is not None
        if self.values[-1] is not resource:
            self.values.append(resource)
