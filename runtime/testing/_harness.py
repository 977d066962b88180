"""Run a runtime on in-memory state for the span of a test."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from volumed.runtime.controller import BackoffPolicy, Runtime
from volumed.runtime.state import in_memory_state

if TYPE_CHECKING:
    import random
    from collections.abc import AsyncIterator

    from volumed.runtime.controller import Controller, QController
    from volumed.runtime.state import State

FAST_BACKOFF = BackoffPolicy(initial=0.01, multiplier=1.5, jitter=0.0, maximum=0.25)
"""The retry policy of test runtimes: failures are retried within milliseconds, without jitter."""


@contextlib.asynccontextmanager
async def run_runtime(
    *controllers: Controller | QController,
    state: State | None = None,
    backoff: BackoffPolicy = FAST_BACKOFF,
    rng: random.Random | None = None,
) -> AsyncIterator[Runtime]:
    """Register ``controllers`` on a runtime over ``state`` (fresh in-memory by default) and run it.

    The runtime is running (listening to every input kind) when the block starts, and fully stopped, with
    every task it started finished, when the block ends.
    """
    runtime = Runtime(state if state is not None else in_memory_state(), backoff=backoff, rng=rng)
    for controller in controllers:
        runtime.register(controller)
    async with runtime:
        yield runtime
