"""The runtime: registers controllers over a state and runs them and their queues in a task group."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import anyio
import anyio.abc
import structlog

from volumed.runtime.resource import Kind

from ._backoff import BackoffPolicy
from ._controller import Controller, QController
from ._entries import ControllerEntry, Logger, QueueEntry, WholeEntry
from ._errors import RegistrationError
from ._feed import KindFeed, Subscription
from ._graph import DependencyGraph
from ._io import Input, Output, OutputKind
from ._loops import run_queue, run_source, run_whole
from ._source import EventSource

if TYPE_CHECKING:
    import random
    from types import TracebackType

    from volumed.runtime.state import State

    from ._metrics import ControllerStats


@final
class Runtime:
    """Runs controllers over a `State`: change dispatch, wake-ups, queues, retries, cleanup and metrics.

    Register controllers, then run the runtime inside a task group (``await tg.start(runtime.run)``) or as an
    async context manager (``async with Runtime(state) as rt:``). Controllers may also be registered while it
    runs (they start at once). Stopping is cancellation: every task the runtime started ends with it and it
    stops listening to the state — nothing is left behind.

    Args:
        state: the state the controllers read and write.
        backoff: retry policy for failing reconciles (whole controllers and queue keys alike).
        rng: random source for the backoff jitter (seed it for reproducible tests).
        quiet_failures: the first failures of each streak are logged at debug level rather than as
            warnings (transient failures at boot, while devices and keys appear, are expected and noisy); a
            streak that goes on is logged as warnings. Errors are counted either way.
        logger: structlog logger to derive controller loggers from (default ``volumed.runtime``).
    """

    def __init__(
        self,
        state: State,
        *,
        backoff: BackoffPolicy | None = None,
        rng: random.Random | None = None,
        quiet_failures: int = 0,
        logger: Logger | None = None,
    ) -> None:
        self._state = state
        self._backoff = backoff or BackoffPolicy()
        self._rng = rng
        if quiet_failures < 0:
            raise ValueError(f"quiet_failures must be >= 0, got {quiet_failures!r}")
        self._quiet_failures = quiet_failures
        self._logger: Logger = logger if logger is not None else structlog.get_logger("volumed.runtime")
        self._entries: dict[str, ControllerEntry] = {}
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
            try:
                self._start(entry, self._tg)
            except BaseException:
                self._forget(entry)  # all or nothing: the name and outputs are free again
                raise

    def _forget(self, entry: ControllerEntry) -> None:
        name = entry.name
        del self._entries[name]
        for claims in self._claims.values():
            claims[:] = [claim for claim in claims if claim[0] != name]
        for feed in self._feeds.values():
            feed.subscriptions = [sub for sub in feed.subscriptions if sub.owner != name]

    def _validated(self, controller: Controller | QController) -> ControllerEntry:
        if not isinstance(controller, Controller | QController):
            raise RegistrationError(
                f"{controller!r} is not a Controller or QController (derive from one of them)"
            )
        name = getattr(controller, "name", None)
        if not isinstance(name, str) or not name:
            raise RegistrationError(f"controller {type(controller).__name__} needs a non-empty string `name`")
        if not name.isprintable():  # printed by `volumed graph`/`metrics` and logs: no forged lines
            raise RegistrationError(f"controller {name!r}: a controller name must be printable")
        if name in self._entries:
            raise RegistrationError(f"a controller named {name!r} is already registered")
        for inp in controller.inputs:
            if not isinstance(inp, Input):
                raise RegistrationError(f"controller {name!r}: inputs must be Input values, got {inp!r}")
            _check_printable(name, "input", namespace=inp.namespace, type=inp.type, id=inp.id or "")
        seen: set[tuple[str, str]] = set()
        for out in controller.outputs:
            if not isinstance(out, Output):
                raise RegistrationError(f"controller {name!r}: outputs must be Output values, got {out!r}")
            _check_printable(name, "output", namespace=out.namespace, type=out.type)
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
        source_names: set[str] = set()
        for source in controller.sources:
            if not isinstance(source, EventSource):
                raise RegistrationError(
                    f"controller {name!r}: sources must be EventSource values, got {source!r}"
                )
            if not isinstance(source.name, str) or not source.name or source.name in source_names:
                raise RegistrationError(
                    f"controller {name!r}: event source names must be unique non-empty strings, got "
                    f"{source.name!r}"
                )
            source_names.add(source.name)
        if isinstance(controller, QController):
            concurrency = controller.concurrency
            if not isinstance(concurrency, int) or concurrency < 1:
                raise RegistrationError(
                    f"controller {name!r}: concurrency must be an int >= 1, got {concurrency!r}"
                )
            entry: ControllerEntry = QueueEntry(
                controller, self._logger, self._state, self._backoff, self._rng
            )
        else:
            entry = WholeEntry(controller, self._logger)
        entry.quiet_failures = self._quiet_failures
        return entry

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
        """Run every controller until cancelled (reports started once it listens to every input kind)."""
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
            for feed in self._feeds.values():
                if feed.stop is not None:
                    feed.stop()
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

    def _feed(self, kind: Kind) -> KindFeed:
        feed = self._feeds.get(kind)
        if feed is None:
            feed = KindFeed(self._logger.bind(kind=str(kind)))
            # Listening from now on (synchronously): nothing committed after this line is missed. Kept only
            # once the state accepted it, so a failed listen leaves no feed that nobody calls.
            feed.stop = self._state.listen(kind, feed.dispatch)
            self._feeds[kind] = feed
        return feed

    def _start(self, entry: ControllerEntry, tg: anyio.abc.TaskGroup) -> None:
        controller = entry.controller
        name = f"volumed.runtime controller {entry.name}"
        if isinstance(entry, WholeEntry):
            for inp in controller.inputs:
                self._feed(Kind(inp.namespace, inp.type)).subscriptions.append(
                    Subscription(entry.name, inp, entry.notify)
                )
            for out in controller.outputs:
                self._feed(Kind(out.namespace, out.type)).subscriptions.append(
                    Subscription(entry.name, None, entry.notify)
                )
            entry.signal.notify()  # the first reconcile
        else:
            assert isinstance(entry, QueueEntry)
            notify = entry.notify_primary if entry.primary_only else entry.notify
            for inp in controller.inputs:
                self._feed(Kind(inp.namespace, inp.type)).subscriptions.append(
                    Subscription(entry.name, inp, notify)
                )
        # Sources first: one that starts watching without suspending wakes the controller before its first
        # reconcile starts, so that wake-up joins the first reconcile instead of causing a second one.
        for source in controller.sources:
            tg.start_soon(
                run_source, entry, source, self._backoff, self._rng, name=f"{name} source {source.name}"
            )
        if isinstance(entry, WholeEntry):
            tg.start_soon(run_whole, self._state, entry, self._backoff, self._rng, name=name)
        else:
            tg.start_soon(run_queue, self._state, entry, name=name)

    # --- whole controllers ----------


def _check_printable(controller: str, what: str, **names: str) -> None:
    """Declared names without control characters: `volumed graph` prints them one per line."""
    for field, value in names.items():
        if not value.isprintable():
            raise RegistrationError(f"controller {controller!r}: {what} {field} {value!r} must be printable")
