"""The project's state backends, opened for the shipped conformance suites (runtime.testing.conformance)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from volumed.runtime import InMemoryCore, NamespacedRouter, SqliteCore
from volumed.runtime.testing.conformance import NS, BackendSetup, BackendSuite

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from volumed.runtime import CoreState


@contextlib.asynccontextmanager
async def _sqlite(setup: BackendSetup) -> AsyncIterator[SqliteCore]:
    path = setup.directory / "state.db"
    opened = await SqliteCore.open(
        path, setup.registry, history=setup.history, fsync_every_commit=setup.durable
    )
    async with opened as core:
        yield core


class InMemory(BackendSuite):
    def open_backend(self, setup: BackendSetup) -> contextlib.AbstractAsyncContextManager[CoreState]:
        return contextlib.nullcontext(InMemoryCore(history=setup.history))


class Sqlite(BackendSuite):
    persistent = True

    def open_backend(self, setup: BackendSetup) -> contextlib.AbstractAsyncContextManager[CoreState]:
        return _sqlite(setup)


class Router(BackendSuite):
    """The suites' namespace routed to sqlite, everything else to memory: routing to a persistent backend."""

    persistent = True

    @contextlib.asynccontextmanager
    async def _open(self, setup: BackendSetup) -> AsyncIterator[CoreState]:
        async with _sqlite(setup) as core:
            yield NamespacedRouter(InMemoryCore(history=setup.history), {NS: core})

    def open_backend(self, setup: BackendSetup) -> contextlib.AbstractAsyncContextManager[CoreState]:
        return self._open(setup)
