"""The sensitive guard API layers read through."""

from __future__ import annotations

import anyio
import pytest

from volumed.runtime import (
    EventType,
    Kind,
    Resource,
    ResourceDefinition,
    ResourceRegistry,
    SensitiveGuard,
    SensitiveResourceError,
    SensitiveSpec,
    Spec,
    in_memory_state,
)

KEYS = Kind("secrets", "Keys.test.volumed.dev")
UNREGISTERED_KEYS = Kind("secrets", "Stray.test.volumed.dev")
DISKS = Kind("default", "Disks.test.volumed.dev")


class Key(SensitiveSpec):
    material: bytes


class Disk(Spec):
    size: int = 0


REGISTRY = ResourceRegistry(
    [ResourceDefinition(KEYS.type, Key, "secrets"), ResourceDefinition(DISKS.type, Disk, "default")]
)


async def test_unprivileged_readers_are_refused_sensitive_types() -> None:
    state = in_memory_state()
    await state.create(Resource.new("secrets", KEYS.type, "k", Key(material=b"s3cret")))
    await state.create(Resource.new("secrets", UNREGISTERED_KEYS.type, "k", Key(material=b"s3cret")))
    await state.create(Resource.new("default", DISKS.type, "d", Disk(size=1)))
    guard = SensitiveGuard(state, REGISTRY)
    assert not guard.privileged
    with pytest.raises(SensitiveResourceError, match="only a privileged caller") as info:
        await guard.get(KEYS.pointer("k"))
    assert "s3cret" not in str(info.value)
    with pytest.raises(SensitiveResourceError):
        await guard.find(KEYS.pointer("k"))
    with pytest.raises(SensitiveResourceError):
        await guard.list(KEYS)
    with pytest.raises(SensitiveResourceError):
        guard.watch(KEYS.pointer("k"))
    with pytest.raises(SensitiveResourceError):
        guard.watch_kind(KEYS)
    # Types missing from the registry are judged by their values.
    with pytest.raises(SensitiveResourceError):
        await guard.get(UNREGISTERED_KEYS.pointer("k"))
    with pytest.raises(SensitiveResourceError):
        await guard.find(UNREGISTERED_KEYS.pointer("k"))
    assert await guard.find(UNREGISTERED_KEYS.pointer("missing")) is None
    with pytest.raises(SensitiveResourceError):
        await guard.list(UNREGISTERED_KEYS)
    assert [r.id for r in await guard.list(DISKS)] == ["d"]
    assert (await guard.get(DISKS.pointer("d"))).spec.size == 1
    found = await guard.find(DISKS.pointer("d"))
    assert found is not None
    assert found.spec.size == 1
    async with guard.watch_kind(DISKS, bootstrap=True) as events:
        assert (await events.__anext__()).resource is not None


async def test_privileged_readers_get_everything() -> None:
    state = in_memory_state()
    await state.create(Resource.new("secrets", KEYS.type, "k", Key(material=b"s3cret")))
    guard = SensitiveGuard(state, REGISTRY, privileged=True)
    assert (await guard.get(KEYS.pointer("k"))).spec.material == b"s3cret"
    assert len(await guard.list(KEYS)) == 1
    async with guard.watch(KEYS.pointer("k")) as events:
        assert (await events.__anext__()).resource is not None


async def test_listeners_never_get_sensitive_values() -> None:
    state = in_memory_state()
    guard = SensitiveGuard(state, REGISTRY)
    with pytest.raises(SensitiveResourceError):
        guard.listen(KEYS, lambda event: None)
    seen: list[str] = []
    guard.listen(UNREGISTERED_KEYS, lambda event: seen.append(event.type.value))
    guard.listen(DISKS, lambda event: seen.append(event.type.value))
    await state.create(Resource.new("secrets", UNREGISTERED_KEYS.type, "k", Key(material=b"s3cret")))
    await state.create(Resource.new("default", DISKS.type, "d", Disk(size=1)))
    assert seen == ["created"]  # the disk only: an unregistered type is judged by its values
    privileged: list[bytes] = []
    SensitiveGuard(state, REGISTRY, privileged=True).listen(
        KEYS, lambda event: privileged.append(event.resource.spec.material if event.resource else b"")
    )
    await state.create(Resource.new("secrets", KEYS.type, "k", Key(material=b"s3cret")))
    assert privileged == [b"s3cret"]


async def test_watches_never_hand_over_sensitive_values_of_unregistered_types() -> None:
    """Reads of an unregistered type refused its sensitive values, but watches handed them over."""
    state = in_memory_state()
    guard = SensitiveGuard(state, REGISTRY)
    await state.create(Resource.new("secrets", UNREGISTERED_KEYS.type, "old", Key(material=b"s3cret")))
    with anyio.fail_after(5):
        async with guard.watch_kind(UNREGISTERED_KEYS, bootstrap=True) as events:
            with pytest.raises(SensitiveResourceError):
                await events.__anext__()  # the existing value, as a bootstrap CREATED
        one = guard.watch(UNREGISTERED_KEYS.pointer("new"))
        assert (await one.__anext__()).type is EventType.NOOP
        await state.create(Resource.new("secrets", UNREGISTERED_KEYS.type, "new", Key(material=b"s3cret")))
        with pytest.raises(SensitiveResourceError):
            await one.__anext__()
        with pytest.raises(StopAsyncIteration):
            await one.__anext__()  # refused once, the stream is closed
        # A plain type watches as before; a privileged guard gets everything.
        async with guard.watch_kind(DISKS) as disks:
            await state.create(Resource.new("default", DISKS.type, "d", Disk(size=1)))
            assert (await disks.__anext__()).type is EventType.CREATED
        async with SensitiveGuard(state, REGISTRY, privileged=True).watch_kind(
            UNREGISTERED_KEYS, bootstrap=True
        ) as everything:
            event = await everything.__anext__()
            assert event.resource is not None
            assert event.resource.spec.material == b"s3cret"
