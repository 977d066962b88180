"""pytest fixtures for controller tests (pytest-asyncio); enable with ``pytest_plugins = [__name__]``.

Add ``pytest_plugins = ["volumed.runtime.testing.plugin"]`` to your top-level ``conftest.py`` and use:

- ``volumed_state``: a fresh in-memory `State`;
- ``volumed_runtime``: a running `Runtime` on ``volumed_state`` with the fast test backoff; register your
  controllers in the test (they start at once). At teardown it is stopped, and the fixture fails the test if
  any task the runtime started is still alive.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest_asyncio

from volumed.runtime.controller import Runtime
from volumed.runtime.state import in_memory_state

from ._harness import FAST_BACKOFF

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from volumed.runtime.state import State


@pytest_asyncio.fixture
async def volumed_state() -> State:
    """A fresh in-memory state."""
    return in_memory_state()


@pytest_asyncio.fixture
async def volumed_runtime(volumed_state: State) -> AsyncIterator[Runtime]:
    """A running runtime over ``volumed_state``; stopped (and checked for leaked tasks) at teardown."""
    runtime = Runtime(volumed_state, backoff=FAST_BACKOFF)
    started = asyncio.Event()
    stop = asyncio.Event()

    # pytest-asyncio may run fixture setup and teardown in different tasks, and an anyio task group must be
    # entered and left by one task: so the runtime lives in a host task of its own for the whole test.
    async def host() -> None:
        async with runtime:
            started.set()
            await stop.wait()

    task = asyncio.get_running_loop().create_task(host(), name="volumed_runtime fixture")
    waiter = asyncio.ensure_future(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if not started.is_set():
        waiter.cancel()
        await task  # raises what stopped the runtime from starting
    try:
        yield runtime
    finally:
        stop.set()
        await task
        leaked = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("volumed.runtime")]
        assert not leaked, f"tasks still alive after the runtime stopped: {leaked}"
