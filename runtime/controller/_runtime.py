"""The runtime: registers controllers over a state and runs them, their queues and watches in a task group."""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Any, final

import anyio
import anyio.abc
import structlog

from volumed.runtime.resource import Kind, Phase
from volumed.runtime.state import EventType, NotFoundError, PendingFinalizersError

from ._access import AccessRules
from ._backoff import Backoff, BackoffPolicy
from ._context import ControllerContext, ControllerReader
from ._controller import Controller, QController
from ._errors import RegistrationError, RequeueError
from ._feed import KindFeed, Subscription, wakes
from ._graph import DependencyGraph
from ._io import Input, Output, OutputKind
from ._metrics import ControllerMetrics, ControllerStats
from ._queue import KeyedQueue
from ._signal import WakeSignal

if TYPE_CHECKING:
    import random
    from types import TracebackType

    from volumed.runtime.resource import Pointer, Resource
    from volumed.runtime.state import State

Logger = structlog.typing.FilteringBoundLogger


def _traceback_text(exc: BaseException) -> str:
    """The traceback of a failed reconcile, for the log.

    Passed as the ``exception`` field rather than ``exc_info``: structlog's console renderer then prints it
    as is, whereas with ``exc_info`` it may render frame locals (rich's ``show_locals``), and locals can
    hold secrets.
    """
    return "".join(traceback.format_exception(exc))


class _Entry:
    __slots__ = ("controller", "logger", "metrics", "name", "rules")

    def __init__(self, controller: Controller | QController, logger: Logger) -> None:
        self.controller = controller
        self.name = controller.name
        self.rules = AccessRules(controller.name, controller.inputs, controller.outputs)
        self.metrics = ControllerMetrics(controller.name)
        self.logger = logger.bind(controller=controller.name)


@final
class _WholeEntry(_Entry):
    __slots__ = ("signal",)

    def __init__(self, controller: Controller, logger: Logger) -> None:
        super().__init__(controller, logger)
        self.signal = WakeSignal()
        self.metrics.track_queue(lambda: int(self.signal.pending))

    def notify(self, _resource: Resource[Any]) -> None:
        self.metrics.wakeups += 1
        self.signal.notify()


@final
class _QueueEntry(_Entry):
    __slots__ = ("primary_only", "queue", "reader")

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
        self.metrics.track_queue(lambda: len(self.queue) + self.queue.delayed)
        # Without a custom mapping every change maps to its own pointer: no coroutine per event needed.
        self.primary_only = type(controller).map_input is QController.map_input

    def notify_primary(self, resource: Resource[Any]) -> None:
        self.metrics.wakeups += 1
        self.queue.put(resource.pointer)

    async def notify(self, resource: Resource[Any]) -> None:
        self.metrics.wakeups += 1
        controller = self.controller
        assert isinstance(controller, QController)
        try:
            keys = await controller.map_input(self.reader, resource)
        except Exception as exc:  # a bad mapping must not stop the feed shared with other controllers
            self.metrics.errors += 1
            self.logger.error(
                "map_input failed; change dropped", resource=str(resource.pointer), error=repr(exc)
            )
            return
        put = self.queue.put
        for key in keys:
            put(key)


@final
class Runtime:
    """Runs controllers over a `State`: watches, wake-ups, queues, retries, cleanup and metrics.

    Register controllers, then run the runtime inside a task group (``await tg.start(runtime.run)``) or as an
    async context manager (``async with Runtime(state) as rt:``). Controllers may also be registered while it
    runs (they start at once). Stopping is cancellation: every task the runtime started ends with it and every
    watch is closed — nothing is left behind.

    Args:
        state: the state the controllers read and write.
        backoff: retry policy for failing reconciles (whole controllers and queue keys alike).
        rng: random source for the backoff jitter (seed it for reproducible tests).
        logger: structlog logger to derive controller loggers from (default ``volumed.runtime``).
    """

    def __init__(
        self,
        state: State,
        *,
        backoff: BackoffPolicy | None = None,
        rng: random.Random | None = None,
        logger: Logger | None = None,
    ) -> None:
        self._state = state
        self._backoff = backoff or BackoffPolicy()
        self._rng = rng
        self._logger: Logger = logger if logger is not None else structlog.get_logger("volumed.runtime")
        self._entries: dict[str, _Entry] = {}
        self._claims: dict[tuple[str, str], list[tuple[str, OutputKind]]] = {}
        self._feeds: dict[Kind, KindFeed] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._host: anyio.abc.TaskGroup | None = None

    # --- registration ----------

    @property
    def state(self) -> State:
        """The state the controllers work on."""
        return self._state

    @property
    def running(self) -> bool:
        """Whether `run` is active."""
        return self._tg is not None

    @property
    def controllers(self) -> list[str]:
        """Registered controller names, in registration order."""
        return list(self._entries)

    def register(self, controller: Controller | QController) -> None:
        """Add a controller (started at once if the runtime runs).

        Raises:
            RegistrationError: not a Controller/QController, empty or duplicate name, malformed declarations,
                an output declared twice, or an exclusive output already claimed (or a shared output already
                claimed exclusively) by another controller.
        """
        entry = self._validated(controller)
        for out in controller.outputs:
            self._claims.setdefault((out.namespace, out.type), []).append((controller.name, out.kind))
        self._entries[controller.name] = entry
        if self._tg is not None:
            self._start(entry, self._tg)

    def _validated(self, controller: Controller | QController) -> _Entry:
        if not isinstance(controller, Controller | QController):
            raise RegistrationError(
                f"{controller!r} is not a Controller or QController (derive from one of them)"
            )
        name = getattr(controller, "name", None)
        if not isinstance(name, str) or not name:
            raise RegistrationError(f"controller {type(controller).__name__} needs a non-empty string `name`")
        if name in self._entries:
            raise RegistrationError(f"a controller named {name!r} is already registered")
        for inp in controller.inputs:
            if not isinstance(inp, Input):
                raise RegistrationError(f"controller {name!r}: inputs must be Input values, got {inp!r}")
        seen: set[tuple[str, str]] = set()
        for out in controller.outputs:
            if not isinstance(out, Output):
                raise RegistrationError(f"controller {name!r}: outputs must be Output values, got {out!r}")
            key = (out.namespace, out.type)
            if key in seen:
                raise RegistrationError(
                    f"controller {name!r} declares output {out.namespace}/{out.type} twice"
                )
            seen.add(key)
            for other, kind in self._claims.get(key, []):
                if out.kind is OutputKind.EXCLUSIVE or kind is OutputKind.EXCLUSIVE:
                    raise RegistrationError(
                        f"controller {name!r} declares output {out.namespace}/{out.type} as "
                        f"{out.kind.value}, but controller {other!r} already declared it {kind.value}: an "
                        "exclusive output has exactly one writer"
                    )
        if isinstance(controller, QController):
            concurrency = controller.concurrency
            if not isinstance(concurrency, int) or concurrency < 1:
                raise RegistrationError(
                    f"controller {name!r}: concurrency must be an int >= 1, got {concurrency!r}"
                )
            return _QueueEntry(controller, self._logger, self._state, self._backoff, self._rng)
        return _WholeEntry(controller, self._logger)

    # --- observation ----------

    def stats(self) -> dict[str, ControllerStats]:
        """A snapshot of every controller's counters, by name."""
        return {name: entry.metrics.snapshot() for name, entry in self._entries.items()}

    def graph(self) -> DependencyGraph:
        """The dependency graph of the registered controllers (export with ``to_dot`` / ``to_mermaid``)."""
        return DependencyGraph.build(
            (e.name, tuple(e.controller.inputs), tuple(e.controller.outputs)) for e in self._entries.values()
        )

    # --- running ----------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run every controller until cancelled (reports started once all watches are registered)."""
        if self._tg is not None:
            raise RuntimeError("this runtime is already running")
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                for entry in self._entries.values():
                    self._start(entry, tg)
                self._logger.info("runtime started", controllers=len(self._entries))
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._tg = None
            self._feeds.clear()
            self._logger.info("runtime stopped")

    async def __aenter__(self) -> Runtime:
        host = anyio.create_task_group()
        await host.__aenter__()
        try:
            await host.start(self.run)
        except BaseException as exc:
            host.cancel_scope.cancel()
            await host.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._host = host
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        host = self._host
        assert host is not None, "Runtime.__aexit__ without __aenter__"
        self._host = None
        host.cancel_scope.cancel()
        # The body's own exception propagates as it is; only a failure of the runtime's tasks is raised here.
        await host.__aexit__(None, None, None)
        return None

    def _feed(self, kind: Kind, tg: anyio.abc.TaskGroup) -> KindFeed:
        feed = self._feeds.get(kind)
        if feed is None:
            # Registered now (synchronously): nothing committed after this line is missed.
            feed = self._feeds[kind] = KindFeed(
                self._state.watch_kind(kind), self._logger.bind(kind=str(kind))
            )
            tg.start_soon(feed.run, name=f"volumed.runtime watch {kind}")
        return feed

    def _start(self, entry: _Entry, tg: anyio.abc.TaskGroup) -> None:
        controller = entry.controller
        if isinstance(entry, _WholeEntry):
            for inp in controller.inputs:
                self._feed(Kind(inp.namespace, inp.type), tg).subscriptions.append(
                    Subscription(entry.name, inp, entry.notify)
                )
            for out in controller.outputs:
                self._feed(Kind(out.namespace, out.type), tg).subscriptions.append(
                    Subscription(entry.name, None, entry.notify)
                )
            entry.signal.notify()  # the first reconcile
            tg.start_soon(self._run_whole, entry, name=f"volumed.runtime controller {entry.name}")
        else:
            assert isinstance(entry, _QueueEntry)
            notify = entry.notify_primary if entry.primary_only else entry.notify
            for inp in controller.inputs:
                self._feed(Kind(inp.namespace, inp.type), tg).subscriptions.append(
                    Subscription(entry.name, inp, notify)
                )
            tg.start_soon(self._run_queue, entry, name=f"volumed.runtime controller {entry.name}")

    # --- whole controllers ----------

    async def _run_whole(self, entry: _WholeEntry) -> None:
        controller = entry.controller
        assert isinstance(controller, Controller)
        metrics = entry.metrics
        signal = entry.signal
        backoff = Backoff(self._backoff, self._rng)
        requeue: float | None = None
        retry: float | None = None
        while True:
            if retry is not None:
                await anyio.sleep(retry)  # a failing controller waits out its backoff, whatever changes
            elif requeue is not None:
                with anyio.move_on_after(requeue):
                    await signal.wait()
            else:
                await signal.wait()
            signal.clear()  # changes notified so far are seen by this reconcile
            retry = requeue = None
            ctx = ControllerContext(self._state, entry.rules, metrics, entry.logger)
            metrics.reconciles += 1
            try:
                await controller.reconcile(ctx)
                if controller.cleanup_outputs:
                    await self._cleanup(entry, controller, ctx)
            except RequeueError as exc:
                metrics.errors += 1
                retry = exc.interval
                entry.logger.warning("reconcile asked to requeue", retry_in=retry, cause=str(exc.cause))
            except Exception as exc:
                metrics.errors += 1
                retry = backoff.failed()
                metrics.failure_streak = backoff.failures
                entry.logger.warning(
                    "reconcile failed",
                    retry_in=round(retry, 3),
                    failures=backoff.failures,
                    error=repr(exc),
                    exception=_traceback_text(exc),
                )
            else:
                if backoff.failures:
                    entry.logger.info("reconcile succeeded again", after_failures=backoff.failures)
                backoff.succeeded()
                metrics.failure_streak = 0
                requeue = ctx.requested_requeue

    async def _cleanup(self, entry: _Entry, controller: Controller, ctx: ControllerContext) -> None:
        """Tear down and destroy owned outputs this reconcile did not write (finalizers permitting)."""
        state = self._state
        name = entry.name
        touched = ctx.touched
        for out in controller.outputs:
            for resource in await state.list(Kind(out.namespace, out.type)):
                md = resource.metadata
                if md.owner != name or resource.pointer in touched:
                    continue
                pointer = resource.pointer
                try:
                    if md.phase is Phase.RUNNING:
                        ready = await state.teardown(pointer, owner=name)
                        entry.metrics.writes += 1
                    else:
                        ready = not md.finalizers
                    if ready:
                        await state.destroy(pointer, owner=name)
                        entry.metrics.writes += 1
                except (NotFoundError, PendingFinalizersError):
                    # Gone already, or a finalizer was added meanwhile: its removal wakes us again.
                    continue

    # --- queue controllers ----------

    async def _run_queue(self, entry: _QueueEntry) -> None:
        controller = entry.controller
        assert isinstance(controller, QController)
        for inp in controller.inputs:
            for resource in await self._state.list(Kind(inp.namespace, inp.type)):
                if wakes(inp, entry.name, EventType.CREATED, resource):  # as if just created
                    await entry.notify(resource)
        async with anyio.create_task_group() as workers:
            for index in range(controller.concurrency):
                workers.start_soon(
                    self._worker, entry, controller, name=f"volumed.runtime {entry.name} #{index}"
                )

    async def _worker(self, entry: _QueueEntry, controller: QController) -> None:
        queue = entry.queue
        metrics = entry.metrics
        state = self._state
        rules = entry.rules
        logger = entry.logger
        while True:
            key = await queue.get()
            try:
                ctx = ControllerContext(state, rules, metrics, logger)
                metrics.reconciles += 1
                await controller.reconcile(ctx, key)
            except RequeueError as exc:
                metrics.errors += 1
                queue.put_after(key, exc.interval)
                logger.warning(
                    "reconcile asked to requeue", key=str(key), retry_in=exc.interval, cause=str(exc.cause)
                )
            except Exception as exc:
                metrics.errors += 1
                delay = queue.retry(key)
                logger.warning(
                    "reconcile failed",
                    key=str(key),
                    retry_in=round(delay, 3),
                    failures=queue.failures(key),
                    error=repr(exc),
                    exception=_traceback_text(exc),
                )
            else:
                queue.forget(key)
                requeue = ctx.requested_requeue
                if requeue is not None:
                    queue.put_after(key, requeue)
            finally:
                queue.done(key)
