"""What a backend under test is given, and the suite base that opens it for each test."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypeVar

import pytest
import pytest_asyncio

from volumed.runtime.state import WrappedState

from ._specs import SUITE_REGISTRY

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    from volumed.runtime.resource import ResourceRegistry
    from volumed.runtime.state import CoreState

HISTORY = 64
"""Events kept per kind for watchers in the suites' states: the slow-watcher test writes past it."""

_T = TypeVar("_T", bound=type)


@dataclass(frozen=True)
class BackendSetup:
    """What `open_backend` gets for one test.

    Attributes:
        registry: every resource type the suites store (`SUITE_REGISTRY`); a backend that rebuilds specs
            through a registry is opened with it.
        directory: an empty directory of this test for the backend's files. A persistent backend opened again
            in the same directory must see what was written there before it was closed.
        history: the events to keep per kind for watchers (the tests count on this exact number).
        durable: False when the test only needs the data to survive a clean close (a backend may skip
            syncing to disk on each commit then, for speed).
    """

    registry: ResourceRegistry
    directory: Path
    history: int = HISTORY
    durable: bool = True


class BackendSuite:
    """Base of the suites: a subclass says how to open the backend under test (`open_backend`).

    Not collected by itself (its name does not start with ``Test``); a subclass named ``Test...`` is.
    """

    persistent: ClassVar[bool] = False
    """True when the backend keeps what it stored across a close and a new `open_backend` in the same
    directory; the suites then check that too."""

    def open_backend(self, setup: BackendSetup) -> AbstractAsyncContextManager[CoreState]:
        """Open a fresh, empty backend for one test and close it when the block ends."""
        raise NotImplementedError(
            f"{type(self).__name__} must define open_backend(setup) -> async context manager of a CoreState"
        )

    @pytest_asyncio.fixture
    async def state(self, tmp_path: Path) -> AsyncIterator[WrappedState]:
        """The full `State` over a fresh backend (derived operations from `WrappedState`)."""
        async with self.open_backend(BackendSetup(SUITE_REGISTRY, tmp_path)) as core:
            yield WrappedState(core)


def asyncio_tests(cls: _T) -> _T:
    """Mark each coroutine test of ``cls`` for pytest-asyncio, so the suite runs in its strict mode too.

    A class-wide mark would also hit the synchronous tests, which pytest-asyncio warns about.
    """
    for name, member in vars(cls).items():
        if name.startswith("test_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, pytest.mark.asyncio(member))
    return cls
