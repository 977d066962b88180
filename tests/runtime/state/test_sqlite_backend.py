"""The sqlite backend beyond the conformance suite: restart, exclusivity, bad files, shielded commits."""

from __future__ import annotations

import base64
import sqlite3
import sys
from pathlib import Path

import anyio
import pytest
from blockbuster import blockbuster_ctx
from pydantic import Field, computed_field

from volumed.runtime import (
    EventType,
    InvalidResourceError,
    Kind,
    Phase,
    Resource,
    ResourceDefinition,
    ResourceRegistry,
    SensitiveSpec,
    Spec,
    SqliteCore,
    StateClosedError,
    StateError,
    WrappedState,
)

NS = "persistent"
DISKS = Kind(NS, "Disks.test.volumed.dev")
KEYS = Kind(NS, "Keys.test.volumed.dev")


class Disk(Spec):
    size: int = 0
    tags: tuple[str, ...] = ()


class Key(SensitiveSpec):
    material: bytes


REGISTRY = ResourceRegistry(
    [ResourceDefinition(DISKS.type, Disk, NS), ResourceDefinition(KEYS.type, Key, NS)]
)


@pytest.mark.parametrize("fsync_every_commit", [True, False])
async def test_data_survives_close_and_reopen(tmp_path: Path, fsync_every_commit: bool) -> None:
    path = tmp_path / "state.db"
    async with await SqliteCore.open(path, REGISTRY, fsync_every_commit=fsync_every_commit) as core:
        state = WrappedState(core)
        a = await state.create(
            Resource.new(NS, DISKS.type, "a", Disk(size=1, tags=("x",)), labels={"l": "1"})
        )
        await state.update(a.with_spec(Disk(size=2)), owner="")
        await state.create(Resource.new(NS, DISKS.type, "b", Disk()), owner="ctrl")
        await state.add_finalizer(DISKS.pointer("b"), "mounter")
        await state.teardown(DISKS.pointer("b"), owner="ctrl")
        await state.create(Resource.new(NS, DISKS.type, "gone", Disk()))
        await state.destroy(DISKS.pointer("gone"))
        await state.create(Resource.new(NS, KEYS.type, "k", Key(material=b"\x00\xffsecret")))
        before = await state.list(DISKS)
    async with await SqliteCore.open(path, REGISTRY) as core:
        state = WrappedState(core)
        after = await state.list(DISKS)
        assert after == before
        assert [r.id for r in after] == ["a", "b"]
        b = after[1].metadata
        assert (b.owner, b.phase, b.finalizers, b.version) == ("ctrl", Phase.TEARING_DOWN, ("mounter",), 3)
        assert after[0].metadata.labels == {"l": "1"}
        assert after[0].spec == Disk(size=2)
        assert (await state.get(KEYS.pointer("k"))).spec.material == b"\x00\xffsecret"
        # Versions continue from the stored ones.
        updated = await state.update(after[0].with_spec(Disk(size=3)))
        assert updated.version == 3
        # Watches bootstrap from the loaded data.
        async with state.watch_kind(DISKS, bootstrap=True) as events:
            with anyio.fail_after(2):
                assert [(await events.__anext__()).type for _ in range(3)] == [
                    EventType.CREATED,
                    EventType.CREATED,
                    EventType.BOOTSTRAPPED,
                ]


async def test_file_is_opened_exclusively(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    async with await SqliteCore.open(path, REGISTRY):
        with pytest.raises(StateError, match="in use"):
            await SqliteCore.open(path, REGISTRY)
    async with await SqliteCore.open(path, REGISTRY):
        pass


async def test_unknown_stored_type_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    async with await SqliteCore.open(path, REGISTRY) as core:
        await core.create(Resource.new(NS, DISKS.type, "a", Disk()))
    only_keys = ResourceRegistry([ResourceDefinition(KEYS.type, Key, NS)])
    with pytest.raises(
        InvalidResourceError, match=r"Disks\.test\.volumed\.dev, which is not in the registry"
    ):
        await SqliteCore.open(path, only_keys)


async def test_malformed_sensitive_row_does_not_leak_its_value(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    async with await SqliteCore.open(path, REGISTRY) as core:
        await core.create(Resource.new(NS, KEYS.type, "k", Key(material=b"x")))
    db = sqlite3.connect(path)
    db.execute("""UPDATE resources SET spec = '{"material": 12345678, "extra": "topsecret"}'""")
    db.commit()
    db.close()
    with pytest.raises(InvalidResourceError, match="malformed") as info:
        await SqliteCore.open(path, REGISTRY)
    assert "topsecret" not in str(info.value)
    assert "12345678" not in str(info.value)


MOUNTS = Kind(NS, "Mounts.test.volumed.dev")


class Mount(Spec):
    """A spec with an aliased field and a float: both must read back as they were written."""

    mount_point: str = Field(default="/", alias="mountPoint")
    share: float = 0.0
    limit: float | None = None


class MountV1(Spec):
    """A mount whose credentials are nested: the outer spec is not sensitive, the nested one is."""

    path: str
    creds: Key


class MountV2(MountV1):
    """The next release's model: one more required field, so the rows of MountV1 no longer validate."""

    mode: str


MOUNT_REGISTRY = ResourceRegistry([ResourceDefinition(MOUNTS.type, Mount, NS)])


async def test_aliased_fields_read_back(tmp_path: Path) -> None:
    """An aliased field used to be stored by name and read back by alias: the file would not open again."""
    path = tmp_path / "state.db"
    spec = Mount(mountPoint="/var/db", share=0.5)
    async with await SqliteCore.open(path, MOUNT_REGISTRY) as core:
        await core.create(Resource.new(NS, MOUNTS.type, "m", spec))
    async with await SqliteCore.open(path, MOUNT_REGISTRY) as core:
        assert (await core.get(MOUNTS.pointer("m"))).spec == spec


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"share": float("nan")}, "it would not read back: share: Input should be a valid number"),
        ({"share": float("inf")}, "it would not read back: share: Input should be a valid number"),
        ({"limit": -float("inf")}, "field.s. limit would read back as different values"),
    ],
    ids=["nan", "inf", "optional-inf"],
)
async def test_a_spec_that_would_not_read_back_is_refused(
    tmp_path: Path, changes: dict[str, float], why: str
) -> None:
    """JSON stores NaN and infinity as null: such a row would keep the whole file from opening again."""
    path = tmp_path / "state.db"
    async with await SqliteCore.open(path, MOUNT_REGISTRY) as core:
        kept = await core.create(Resource.new(NS, MOUNTS.type, "kept", Mount(share=1.0)))
        with pytest.raises(
            InvalidResourceError, match=f"Mounts.test.volumed.dev/bad cannot be stored: {why}"
        ):
            await core.create(Resource.new(NS, MOUNTS.type, "bad", Mount(**changes)))
        with pytest.raises(InvalidResourceError, match="cannot be stored"):
            await core.update(kept.with_spec(Mount(**changes)))
        assert await core.find(MOUNTS.pointer("bad")) is None
    async with await SqliteCore.open(path, MOUNT_REGISTRY) as core:
        assert [r.spec for r in await core.list(MOUNTS)] == [Mount(share=1.0)]


class Totals(Spec):
    """A spec with a computed field: serialized for readers, derived again from the fields on reading."""

    parts: tuple[int, ...] = ()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> int:
        return sum(self.parts)


TOTALS = Kind(NS, "Totals.test.volumed.dev")


async def test_a_spec_with_a_computed_field_is_stored_and_read_back(tmp_path: Path) -> None:
    """The computed field was stored too, and a model that forbids extra input refused it on reading."""
    path = tmp_path / "state.db"
    registry = ResourceRegistry([ResourceDefinition(TOTALS.type, Totals, NS)])
    async with await SqliteCore.open(path, registry) as core:
        await core.create(Resource.new(NS, TOTALS.type, "t", Totals(parts=(1, 2))))
    async with await SqliteCore.open(path, registry) as core:
        stored = await core.get(TOTALS.pointer("t"))
        assert (stored.spec, stored.spec.total) == (Totals(parts=(1, 2)), 3)


async def test_a_string_json_cannot_encode_is_refused_as_a_state_error(tmp_path: Path) -> None:
    async with await SqliteCore.open(tmp_path / "state.db", MOUNT_REGISTRY) as core:
        with pytest.raises(InvalidResourceError, match="cannot be encoded as JSON"):
            await core.create(Resource.new(NS, MOUNTS.type, "m", Mount(mountPoint="/\udc80")))
        assert await core.list(MOUNTS) == []


async def test_malformed_row_does_not_quote_secrets_nested_in_a_plain_spec(tmp_path: Path) -> None:
    """The open error names the fields that failed; it used to quote the stored value, secrets included."""
    path = tmp_path / "state.db"
    v1 = ResourceRegistry([ResourceDefinition(MOUNTS.type, MountV1, NS)])
    v2 = ResourceRegistry([ResourceDefinition(MOUNTS.type, MountV2, NS)])
    async with await SqliteCore.open(path, v1) as core:
        await core.create(
            Resource.new(NS, MOUNTS.type, "m", MountV1(path="/srv", creds=Key(material=b"TOPSECRET")))
        )
    with pytest.raises(InvalidResourceError, match="malformed: mode: Field required") as info:
        await SqliteCore.open(path, v2)
    message = str(info.value)
    assert "TOPSECRET" not in message
    assert base64.b64encode(b"TOPSECRET").decode() not in message
    assert "/srv" not in message


async def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="not a usable sqlite state file"):
        await SqliteCore.open(path, REGISTRY)


async def test_writes_need_a_registered_type_and_model(tmp_path: Path) -> None:
    async with await SqliteCore.open(tmp_path / "state.db", REGISTRY) as core:
        with pytest.raises(InvalidResourceError, match="not registered"):
            await core.create(Resource.new(NS, "Unknowns.test.volumed.dev", "u", Disk()))
        with pytest.raises(InvalidResourceError, match="registered model is Disk"):
            await core.create(Resource.new(NS, DISKS.type, "u", Key(material=b"")))


async def test_close_ends_watches_and_refuses_writes(tmp_path: Path) -> None:
    core = await SqliteCore.open(tmp_path / "state.db", REGISTRY)
    events = core.watch_kind(DISKS)
    await core.aclose()
    await core.aclose()
    with anyio.fail_after(2):
        last = await events.__anext__()
    assert last.type is EventType.ERRORED
    assert isinstance(last.error, StateClosedError)
    with pytest.raises(StopAsyncIteration):
        await events.__anext__()
    with pytest.raises(StateClosedError):
        await core.create(Resource.new(NS, DISKS.type, "a", Disk()))


async def test_cancelled_caller_never_splits_file_and_memory(tmp_path: Path) -> None:
    """Cancel writers at random points: whatever happened, the reopened file equals what memory showed."""
    path = tmp_path / "state.db"
    async with await SqliteCore.open(path, REGISTRY) as core:
        for i in range(30):
            with anyio.move_on_after(0.0005 * (i % 5)):
                await core.create(Resource.new(NS, DISKS.type, f"r{i:02d}", Disk(size=i)))
        in_memory = await core.list(DISKS)
    async with await SqliteCore.open(path, REGISTRY) as core:
        assert await core.list(DISKS) == in_memory


async def test_no_blocking_call_runs_on_the_event_loop(tmp_path: Path) -> None:
    """Every sqlite call runs in a worker thread: blockbuster fails any blocking call made on the loop."""
    with blockbuster_ctx():
        async with await SqliteCore.open(tmp_path / "state.db", REGISTRY) as core:
            state = WrappedState(core)
            created = await state.create(Resource.new(NS, DISKS.type, "a", Disk()))
            await state.update(created.with_spec(Disk(size=1)))
            await state.add_finalizer(created.pointer, "f")
            await state.remove_finalizer(created.pointer, "f")
            await state.teardown_and_destroy(created.pointer)
            assert await state.list(DISKS) == []


_CHILD = """
import sys, anyio
sys.path.insert(0, {tests!r})
from test_sqlite_backend import DISKS, NS, REGISTRY, Disk
from volumed.runtime import Resource, SqliteCore

async def main() -> None:
    core = await SqliteCore.open({path!r}, REGISTRY)
    i = 0
    while True:
        created = await core.create(Resource.new(NS, DISKS.type, f"r{{i:06d}}", Disk(size=i)))
        await core.update(created.with_spec(Disk(size=-i)))
        if i == 20:
            print("running", flush=True)
        i += 1

anyio.run(main)
"""


async def test_killed_writer_leaves_a_consistent_file(tmp_path: Path) -> None:
    """SIGKILL a process in the middle of writing: the file reopens and holds only whole transactions."""
    path = tmp_path / "state.db"
    script = _CHILD.format(tests=str(Path(__file__).parent), path=str(path))
    async with await anyio.open_process([sys.executable, "-c", script]) as child:
        assert child.stdout is not None
        with anyio.fail_after(30):
            line = await child.stdout.receive()
        assert b"running" in line
        await anyio.sleep(0.2)
        child.kill()
        await child.wait()
    async with await SqliteCore.open(path, REGISTRY) as core:
        stored = await core.list(DISKS)
    assert len(stored) > 20
    for resource in stored:
        n = int(resource.id[1:])
        # Each create and each update is one transaction: a resource is at version 1 or 2, never torn.
        assert (resource.version, resource.spec.size) in ((1, n), (2, -n))
    assert [int(r.id[1:]) for r in stored] == list(range(len(stored)))
