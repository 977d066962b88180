"""The shipped suites fail a backend that breaks the contract (a suite that passes all proves nothing)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, cast

import pytest

from volumed.runtime import InMemoryCore, Resource, WrappedState
from volumed.runtime.testing.conformance import (
    SUITE_REGISTRY,
    BackendSetup,
    RuntimeConformance,
    StateConformance,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from volumed.runtime import CoreState, Event, Kind


class _Delegating:
    def __init__(self, core: CoreState) -> None:
        self._core = core

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)


class _AcceptsStaleUpdates(_Delegating):
    """Takes every update as based on the stored version: lost updates go unnoticed."""

    async def update(self, resource: Resource[Any], **options: Any) -> Resource[Any]:
        stored = await self._core.get(resource.pointer)
        return await self._core.update(resource.with_metadata(version=stored.version), **options)


class _Deaf(_Delegating):
    """Never calls its listeners: a runtime over it is not woken by changes."""

    def listen(self, kind: Kind, listener: Callable[[Event], None]) -> Callable[[], None]:
        return lambda: None


class LenientState(StateConformance):  # not Test...: its tests are run by hand below
    def open_backend(self, setup: BackendSetup) -> contextlib.AbstractAsyncContextManager[CoreState]:
        return contextlib.nullcontext(cast("CoreState", _AcceptsStaleUpdates(InMemoryCore())))


class DeafRuntime(RuntimeConformance):
    within = 0.2

    def open_backend(self, setup: BackendSetup) -> contextlib.AbstractAsyncContextManager[CoreState]:
        return contextlib.nullcontext(cast("CoreState", _Deaf(InMemoryCore())))


async def test_the_state_suite_fails_a_backend_that_accepts_stale_updates(tmp_path: Path) -> None:
    suite = LenientState()
    async with suite.open_backend(BackendSetup(SUITE_REGISTRY, tmp_path)) as core:
        with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
            await suite.test_update_stale_version_raises_conflict(WrappedState(core))


async def test_the_runtime_suite_fails_a_backend_that_does_not_notify(tmp_path: Path) -> None:
    suite = DeafRuntime()
    async with suite.open_backend(BackendSetup(SUITE_REGISTRY, tmp_path)) as core:
        with pytest.raises(AssertionError, match=r"condition not met within 0\.2s"):
            await suite.test_a_chain_of_controllers_converges_and_follows_changes(WrappedState(core))
