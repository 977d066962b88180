"""The persistent backend: the in-memory index, written through to one sqlite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, final

import anyio
import anyio.to_thread

from volumed.runtime._lowlevel import checkpoint
from volumed.runtime.resource import Phase, Pointer, Resource, ResourceRegistry

from .._errors import ConflictError, InvalidResourceError, StateClosedError, StateError
from .._events import Event, EventType
from .._index import DEFAULT_HISTORY, Clock, ResourceIndex, utc_now
from .._index_reads import IndexReads
from .._watch import closed_error
from ._schema import COLUMNS, SCHEMA, SCHEMA_VERSION, from_row, to_row

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType


@final
class SqliteCore(IndexReads):
    """A state that survives restarts: one sqlite file, one transaction per write.

    Reads and watches are served from an in-memory index loaded when the file is opened (as fast as the
    in-memory backend); every write is validated against that index, committed to the file in a worker
    thread, and only then applied to the index and published to watchers. Writes are serialised by a lock, so
    events follow commit order. A commit that has started is shielded from cancellation: the file and the
    index never disagree. The file is opened with an exclusive lock: one process owns it at a time.

    Specs are stored as JSON and rebuilt through the spec model registered for their type, so every type
    stored in the file must be in ``registry`` when the file is opened.
    """

    def __init__(
        self, path: Path, db: sqlite3.Connection, registry: ResourceRegistry, index: ResourceIndex
    ) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = db
        self._registry = registry
        self._index = index
        self._lock = anyio.Lock()

    @classmethod
    async def open(
        cls,
        path: str | Path,
        registry: ResourceRegistry,
        *,
        history: int = DEFAULT_HISTORY,
        clock: Clock = utc_now,
        fsync_every_commit: bool = True,
    ) -> SqliteCore:
        """Open (or create) the state file at ``path`` and load it. Raises StateError when it cannot.

        Args:
            path: the state file (created when missing).
            registry: the definitions of every type stored in the file (specs are rebuilt through them).
            history: events kept per kind for watchers.
            clock: source of ``created``/``updated`` times.
            fsync_every_commit: sync the file on every commit (sqlite ``synchronous=FULL``, a few ms per
                write). False keeps the file consistent after a process crash but may lose the last commits
                on power loss (``synchronous=NORMAL``).
        """
        file = Path(path)
        index = ResourceIndex(history=history, clock=clock)
        db, resources = await anyio.to_thread.run_sync(_open_and_load, file, registry, fsync_every_commit)
        for resource in resources:
            index.load(resource)
        return cls(file, db, registry, index)

    @property
    def path(self) -> Path:
        """The state file."""
        return self._path

    async def aclose(self) -> None:
        """Close the file and end every watch with ERRORED (idempotent)."""
        async with self._lock:
            db, self._db = self._db, None
            if db is None:
                return
            self._index.close(closed_error(f"sqlite state {self._path}"))
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(db.close)

    async def __aenter__(self) -> SqliteCore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # reads and watches are served from memory (IndexReads)

    # --- writes (through the file) -------------------------------------------------------------------------

    async def create(self, resource: Resource[Any], *, owner: str | None = None) -> Resource[Any]:
        def plan() -> Event:
            self._check_model(resource)
            return self._index.plan_create(resource, owner=owner)

        event = await self._write(plan)
        assert event is not None
        assert event.resource is not None
        return event.resource

    async def update(
        self,
        resource: Resource[Any],
        *,
        owner: str | None = None,
        expected_phase: Phase | None = Phase.RUNNING,
    ) -> Resource[Any]:
        def plan() -> Event | None:
            self._check_model(resource)
            return self._index.plan_update(resource, owner=owner, expected_phase=expected_phase)

        event = await self._write(plan)
        if event is None:
            return self._index.get(resource.pointer)
        assert event.resource is not None
        return event.resource

    async def destroy(self, pointer: Pointer, *, owner: str = "") -> None:
        await self._write(lambda: self._index.plan_destroy(pointer, owner=owner))

    async def add_finalizer(self, pointer: Pointer, *finalizers: str) -> Resource[Any]:
        await self._write(lambda: self._index.plan_finalizers(pointer, finalizers, add=True))
        return self._index.get(pointer)

    async def remove_finalizer(self, pointer: Pointer, *finalizers: str) -> Resource[Any]:
        await self._write(lambda: self._index.plan_finalizers(pointer, finalizers, add=False))
        return self._index.get(pointer)

    async def teardown(self, pointer: Pointer, *, owner: str = "") -> bool:
        await self._write(lambda: self._index.plan_teardown(pointer, owner=owner))
        return not self._index.get(pointer).metadata.finalizers

    def _check_model(self, resource: Resource[Any]) -> None:
        type_name = resource.metadata.type
        model = self._registry.find(type_name)
        if model is None or model.type != type_name:
            raise InvalidResourceError(
                f"resource type {type_name} is not registered: the sqlite state needs its spec model",
                resource.pointer,
            )
        if type(resource.spec) is not model.spec_model:
            raise InvalidResourceError(
                f"spec of {resource.pointer} is a {type(resource.spec).__name__}, "
                f"the registered model is {model.spec_model.__name__}",
                resource.pointer,
            )

    async def _write(self, plan: Callable[[], Event | None]) -> Event | None:
        await checkpoint()
        async with self._lock:
            db = self._db
            if db is None:
                raise StateClosedError(f"sqlite state {self._path} is closed")
            event = plan()
            if event is None:
                return None
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_persist, db, event, str(self._path))
                self._index.apply(event)
            return event


def _open_and_load(
    path: Path, registry: ResourceRegistry, fsync_every_commit: bool
) -> tuple[sqlite3.Connection, list[Resource[Any]]]:
    where = f"sqlite state {path}"
    try:
        db = sqlite3.connect(path, timeout=1.0, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StateError(f"{where}: cannot open: {exc}") from None
    try:
        db.execute("PRAGMA locking_mode = EXCLUSIVE")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {'FULL' if fsync_every_commit else 'NORMAL'}")
        db.execute("BEGIN IMMEDIATE")
        try:
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version not in (0, SCHEMA_VERSION):
                raise StateError(
                    f"{where}: schema version {version} is not supported (want {SCHEMA_VERSION})"
                )
            db.execute(SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            rows = db.execute(f"SELECT {COLUMNS} FROM resources").fetchall()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        resources = [from_row(row, registry, where) for row in rows]
    except sqlite3.OperationalError as exc:
        db.close()
        if "locked" in str(exc):
            raise StateError(
                f"{where} is in use by another process or state (it is opened exclusively)"
            ) from None
        raise StateError(f"{where}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        db.close()
        raise StateError(f"{where} is not a usable sqlite state file: {exc}") from None
    except BaseException:
        db.close()
        raise
    return db, resources


def _persist(db: sqlite3.Connection, event: Event, path: str) -> None:
    resource = event.resource
    assert resource is not None
    md = resource.metadata
    key = (md.namespace, md.type, md.id)
    db.execute("BEGIN IMMEDIATE")
    try:
        if event.type is EventType.CREATED:
            db.execute(
                f"INSERT INTO resources ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", to_row(resource)
            )
        elif event.type is EventType.UPDATED:
            assert event.old is not None
            row = to_row(resource)
            cursor = db.execute(
                "UPDATE resources SET version=?, owner=?, phase=?, labels=?, annotations=?, finalizers=?, "
                "created=?, updated=?, spec=? WHERE namespace=? AND type=? AND id=? AND version=?",
                (*row[3:], *key, event.old.metadata.version),
            )
            if cursor.rowcount != 1:
                raise ConflictError(md.pointer, expected=event.old.metadata.version, stored=-1)
        else:
            cursor = db.execute(
                "DELETE FROM resources WHERE namespace=? AND type=? AND id=? AND version=?",
                (*key, md.version),
            )
            if cursor.rowcount != 1:
                raise ConflictError(md.pointer, expected=md.version, stored=-1)
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        db.execute("ROLLBACK")
        raise StateError(
            f"sqlite state {path}: cannot commit {event.type.value} of {md.pointer}: {exc}"
        ) from None
    except BaseException:
        db.execute("ROLLBACK")
        raise
