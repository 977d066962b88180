"""Watch-driven assertions: wait until a resource satisfies a condition, or fail with what was last seen."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from volumed.runtime.state import EventType

if TYPE_CHECKING:
    from collections.abc import Callable

    from volumed.runtime.resource import Pointer, Resource
    from volumed.runtime.state import StateReader

    Predicate = Callable[[Resource[Any]], object]

DEFAULT_TIMEOUT = 5.0
"""Seconds the assertions wait by default: generous for CI, and a passing assertion returns at once."""


async def assert_resource(
    state: StateReader,
    pointer: Pointer,
    predicate: Predicate | None = None,
    *,
    within: float = DEFAULT_TIMEOUT,
) -> Resource[Any]:
    """Wait until the resource at ``pointer`` exists and ``predicate`` holds for it; return that value.

    The condition is re-checked on every change of the resource (a watch, never polling or sleeping), so the
    assertion returns as soon as it holds. ``predicate`` either returns a truth value, or uses plain
    ``assert`` statements and returns None (an AssertionError means "not yet"); the last failure is kept for
    the message.

    Raises:
        AssertionError: ``within`` seconds passed first; the message names the resource, the last value
            seen and the last predicate failure.
    """
    last: Resource[Any] | None = None
    why = "it does not exist"
    with anyio.move_on_after(within):
        async with state.watch(pointer) as events:
            async for event in events:
                if event.type is EventType.ERRORED:
                    raise AssertionError(f"watch of {pointer} ended: {event.error}")
                if event.type in (EventType.NOOP, EventType.DESTROYED) or event.resource is None:
                    last, why = None, "it does not exist"
                    continue
                last = event.resource
                try:
                    outcome = True if predicate is None else predicate(last)
                except AssertionError as exc:
                    why = f"predicate failed: {exc}" if str(exc) else "predicate failed"
                    continue
                if outcome is None or outcome:
                    return last
                why = "predicate returned false"
    raise AssertionError(f"{pointer}: condition not met within {within:g}s ({why}); last seen: {last!r}")


async def assert_no_resource(
    state: StateReader, pointer: Pointer, *, within: float = DEFAULT_TIMEOUT
) -> None:
    """Wait until no resource exists at ``pointer`` (watch-driven, like `assert_resource`).

    Raises:
        AssertionError: it still exists after ``within`` seconds (the message shows its last value).
    """
    last: Resource[Any] | None = None
    with anyio.move_on_after(within):
        async with state.watch(pointer) as events:
            async for event in events:
                if event.type is EventType.ERRORED:
                    raise AssertionError(f"watch of {pointer} ended: {event.error}")
                if event.type in (EventType.NOOP, EventType.DESTROYED):
                    return
                last = event.resource
    raise AssertionError(f"{pointer} still exists after {within:g}s; last seen: {last!r}")
