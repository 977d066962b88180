"""assert_resource / assert_no_resource: watch-driven waits with a timeout and a useful failure message."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from volumed.runtime import Kind, Resource, Spec, State, in_memory_state
from volumed.runtime.testing import assert_no_resource, assert_resource

THINGS = Kind("default", "Things.test.volumed.dev")


class Thing(Spec):
    size: int = 0


def thing(id_: str, size: int = 0) -> Resource[Thing]:
    return Resource.new(THINGS.namespace, THINGS.type, id_, Thing(size=size))


async def test_returns_at_once_when_the_condition_already_holds() -> None:
    state = in_memory_state()
    await state.create(thing("a", 3))
    found = await assert_resource(state, THINGS.pointer("a"), lambda r: r.spec.size == 3, within=0.5)
    assert found.spec == Thing(size=3)


async def _grow(state: State, id_: str, sizes: list[int]) -> None:
    await state.create(thing(id_, sizes[0]))
    for size in sizes[1:]:
        await anyio.wait_all_tasks_blocked()
        current = await state.get(THINGS.pointer(id_))
        await state.update(current.with_spec(Thing(size=size)))


async def test_waits_for_changes_and_accepts_assert_statements() -> None:
    state = in_memory_state()

    def big(resource: Resource[Any]) -> None:
        assert resource.spec.size >= 3, f"size is {resource.spec.size}"

    async with anyio.create_task_group() as tg:
        tg.start_soon(_grow, state, "a", [1, 2, 3, 4])
        found = await assert_resource(state, THINGS.pointer("a"), big)
    assert found.spec.size == 3  # the first value that satisfied it


async def test_failure_message_names_the_resource_and_the_last_failure() -> None:
    state = in_memory_state()
    await state.create(thing("a", 1))

    def big(resource: Resource[Any]) -> None:
        assert resource.spec.size >= 3, f"size is {resource.spec.size}"

    with pytest.raises(
        AssertionError, match=r"(?s)Things\.test\.volumed\.dev/a: .*size is 1.*last seen: Resource"
    ):
        await assert_resource(state, THINGS.pointer("a"), big, within=0.05)
    with pytest.raises(AssertionError, match="predicate returned false"):
        await assert_resource(state, THINGS.pointer("a"), lambda r: r.spec.size == 2, within=0.05)
    with pytest.raises(AssertionError, match="it does not exist"):
        await assert_resource(state, THINGS.pointer("missing"), within=0.05)


async def test_no_resource_waits_for_destruction() -> None:
    state = in_memory_state()
    await state.create(thing("a"))
    await assert_no_resource(state, THINGS.pointer("never"), within=0.5)

    async def destroy_later() -> None:
        await anyio.wait_all_tasks_blocked()
        await state.destroy(THINGS.pointer("a"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(destroy_later)
        await assert_no_resource(state, THINGS.pointer("a"))


async def test_no_resource_fails_when_it_stays() -> None:
    state = in_memory_state()
    await state.create(thing("a", 7))
    with pytest.raises(AssertionError, match=r"still exists after 0\.05s.*Thing"):
        await assert_no_resource(state, THINGS.pointer("a"), within=0.05)
