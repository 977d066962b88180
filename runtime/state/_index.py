"""The in-memory resource index every backend serves reads and watches from.

Writes are split in two synchronous steps so that a persistent backend can put durable storage in between:
``plan_*`` validates against the current state and returns the event the write would produce (None for a
no-op) without changing anything; `apply` commits that event to the index and appends it to the kind's
watch log.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, final

from volumed.runtime.resource import (
    IDQuery,
    Kind,
    LabelQuery,
    Metadata,
    Phase,
    Pointer,
    Resource,
)
from volumed.runtime.resource._metadata import build_metadata, evolve_metadata
from volumed.runtime.resource._resource import trusted_resource

from ._errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidResourceError,
    NotFoundError,
    OwnerConflictError,
    PendingFinalizersError,
    PhaseConflictError,
    StateError,
)
from ._events import Event, EventType, make_event
from ._watch import EventLog, Listener, Watcher

DEFAULT_HISTORY = 1024
"""Events kept per kind for watchers (cosi keeps 100); a watcher further behind is resynchronised."""

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


@final
class _KindStore:
    __slots__ = ("log", "resources", "sorted_ids", "spec_type")

    def __init__(self, history: int) -> None:
        self.resources: dict[str, Resource[Any]] = {}
        # The spec model of the first resource stored: every resource of a kind must use the same one.
        self.spec_type: type[Any] | None = None
        self.sorted_ids: list[str] | None = None
        self.log = EventLog(history)

    def sorted_resources(self) -> list[Resource[Any]]:
        ids = self.sorted_ids
        if ids is None:
            ids = self.sorted_ids = sorted(self.resources)
        resources = self.resources
        return [resources[i] for i in ids]


def _query_matcher(labels: LabelQuery | None, ids: IDQuery | None) -> Callable[[Resource[Any]], bool] | None:
    """A predicate for the queries; None when there is nothing to filter (watchers skip the call)."""
    if labels is None and ids is None:
        return None
    if ids is None:
        assert labels is not None
        return lambda r: labels.matches(r.metadata.labels)
    if labels is None:
        return lambda r: ids.matches(r.metadata.id)
    return lambda r: ids.matches(r.metadata.id) and labels.matches(r.metadata.labels)


@final
class ResourceIndex:
    """Resources by kind and id, plus one bounded watch log per kind. Not thread-safe: use from one loop."""

    def __init__(self, *, history: int = DEFAULT_HISTORY, clock: Clock = utc_now) -> None:
        if history < 1:
            raise ValueError(f"watch history must be at least 1 event per kind, got {history}")
        self._history = history
        self._clock = clock
        # Keyed by (namespace, type) tuples: cheaper than building Kind values on every operation.
        self._kinds: dict[tuple[str, str], _KindStore] = {}
        self._closed: StateError | None = None

    def _store(self, namespace: str, type_name: str) -> _KindStore:
        key = (namespace, type_name)
        store = self._kinds.get(key)
        if store is None:
            store = self._kinds[key] = _KindStore(self._history)
            if self._closed is not None:
                store.log.close(self._closed)
        return store

    # --- reads ---------------------------------------------------------------------------------------------

    def find(self, pointer: Pointer) -> Resource[Any] | None:
        """The resource at ``pointer``, or None."""
        store = self._kinds.get((pointer.namespace, pointer.type))
        return None if store is None else store.resources.get(pointer.id)

    def _current(self, md: Metadata) -> Resource[Any]:
        store = self._kinds.get((md.namespace, md.type))
        current = None if store is None else store.resources.get(md.id)
        if current is None:
            raise NotFoundError(md.pointer)
        return current

    def get(self, pointer: Pointer) -> Resource[Any]:
        """The resource at ``pointer``; NotFoundError when absent."""
        resource = self.find(pointer)
        if resource is None:
            raise NotFoundError(pointer)
        return resource

    def list(
        self, kind: Kind, *, labels: LabelQuery | None = None, ids: IDQuery | None = None
    ) -> list[Resource[Any]]:
        """Resources of ``kind`` matching the queries, sorted by id."""
        store = self._kinds.get((kind.namespace, kind.type))
        if store is None:
            return []
        items = store.sorted_resources()
        if labels is None and ids is None:
            return items
        match = _query_matcher(labels, ids)
        assert match is not None
        return [r for r in items if match(r)]

    def all(self) -> Iterable[Resource[Any]]:
        """Every resource (for persistence checks and tests)."""
        for store in self._kinds.values():
            yield from store.resources.values()

    def watch(self, pointer: Pointer) -> Watcher:
        """A watcher of one resource; its first event is the current state (CREATED, or NOOP when absent)."""
        store = self._store(pointer.namespace, pointer.type)
        rid = pointer.id

        def snapshot() -> Sequence[Resource[Any]]:
            found = store.resources.get(rid)
            return () if found is None else (found,)

        return Watcher(store.log, snapshot, lambda r: r.metadata.id == rid, bootstrap=False, single=True)

    def watch_kind(
        self,
        kind: Kind,
        *,
        bootstrap: bool = False,
        labels: LabelQuery | None = None,
        ids: IDQuery | None = None,
    ) -> Watcher:
        """A watcher of a kind (see `StateReader.watch_kind`)."""
        store = self._store(kind.namespace, kind.type)
        return Watcher(
            store.log, store.sorted_resources, _query_matcher(labels, ids), bootstrap=bootstrap, single=False
        )

    def watched(self, namespace: str, type_name: str) -> bool:
        """Whether some open watcher reads the kind's events."""
        store = self._kinds.get((namespace, type_name))
        return store is not None and store.log.watchers > 0

    def listen(self, kind: Kind, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event of ``kind`` committed from now on (see `StateReader.listen`)."""
        return self._store(kind.namespace, kind.type).log.listen(listener)

    # --- write planning ------------------------------------------------------------------------------------

    def plan_create(self, resource: Resource[Any], *, owner: str | None) -> Event:
        """Validate a create; the event holds the resource as it will be stored (version 1)."""
        if not isinstance(resource, Resource):
            raise InvalidResourceError(f"create needs a Resource, got {type(resource).__name__}")
        md = resource.metadata
        store = self._kinds.get((md.namespace, md.type))
        if store is not None and md.id in store.resources:
            raise AlreadyExistsError(md.pointer)
        if store is not None and store.spec_type is not None and type(resource.spec) is not store.spec_type:
            self._wrong_spec_model(resource, store.spec_type)
        now = self._clock()
        stored = build_metadata(
            md.namespace,
            md.type,
            md.id,
            1,
            md.owner if owner is None else owner,
            md.labels,
            md.annotations,
            md.finalizers,
            Phase.RUNNING,
            now,
            now,
        )
        return make_event(EventType.CREATED, trusted_resource(stored, resource.spec))

    def plan_update(
        self, resource: Resource[Any], *, owner: str | None, expected_phase: Phase | None
    ) -> Event | None:
        """Validate an update; None when it changes nothing (no version bump, no event)."""
        if not isinstance(resource, Resource):
            raise InvalidResourceError(f"update needs a Resource, got {type(resource).__name__}")
        md = resource.metadata
        current = self._current(md)
        cur = current.metadata
        caller = md.owner if owner is None else owner
        if caller != cur.owner:
            raise OwnerConflictError(md.pointer, owner=cur.owner, caller=caller)
        if md.version != cur.version:
            raise ConflictError(md.pointer, expected=md.version, stored=cur.version)
        if expected_phase is not None and cur.phase is not expected_phase:
            raise PhaseConflictError(md.pointer, expected=expected_phase, actual=cur.phase)
        if type(resource.spec) is not type(current.spec):
            self._wrong_spec_model(resource, type(current.spec))
        if md.labels == cur.labels and md.annotations == cur.annotations and resource.spec == current.spec:
            return None
        stored = build_metadata(
            cur.namespace,
            cur.type,
            cur.id,
            cur.version + 1,
            cur.owner,
            md.labels,
            md.annotations,
            cur.finalizers,
            cur.phase,
            cur.created,
            self._clock(),
        )
        return make_event(EventType.UPDATED, trusted_resource(stored, resource.spec), current)

    def plan_destroy(self, pointer: Pointer, *, owner: str) -> Event:
        """Validate a destroy: owner must match and no finalizers may remain."""
        current = self.get(pointer)
        cur = current.metadata
        if owner != cur.owner:
            raise OwnerConflictError(pointer, owner=cur.owner, caller=owner)
        if cur.finalizers:
            raise PendingFinalizersError(pointer, cur.finalizers)
        return make_event(EventType.DESTROYED, current)

    def plan_teardown(self, pointer: Pointer, *, owner: str) -> Event | None:
        """Validate a teardown; None when the resource is already tearing down."""
        current = self.get(pointer)
        cur = current.metadata
        if owner != cur.owner:
            raise OwnerConflictError(pointer, owner=cur.owner, caller=owner)
        if cur.phase is Phase.TEARING_DOWN:
            return None
        stored = evolve_metadata(
            cur, version=cur.version + 1, phase=Phase.TEARING_DOWN, updated=self._clock()
        )
        return make_event(EventType.UPDATED, trusted_resource(stored, current.spec), current)

    def plan_finalizers(self, pointer: Pointer, finalizers: tuple[str, ...], *, add: bool) -> Event | None:
        """Validate adding or removing finalizers; None when nothing changes."""
        for finalizer in finalizers:
            if not isinstance(finalizer, str) or not finalizer:
                raise InvalidResourceError(
                    f"finalizers must be non-empty strings, got {finalizer!r}", pointer
                )
        current = self.get(pointer)
        cur = current.metadata
        if add:
            merged = list(cur.finalizers)
            for finalizer in finalizers:
                if finalizer not in merged:
                    merged.append(finalizer)
            result = tuple(merged)
        else:
            result = tuple(f for f in cur.finalizers if f not in finalizers)
        if result == cur.finalizers:
            return None
        stored = evolve_metadata(cur, version=cur.version + 1, finalizers=result, updated=self._clock())
        return make_event(EventType.UPDATED, trusted_resource(stored, current.spec), current)

    @staticmethod
    def _wrong_spec_model(resource: Resource[Any], expected: type[Any]) -> NoReturn:
        raise InvalidResourceError(
            f"spec of {resource.pointer} is a {type(resource.spec).__name__}, but resources of type "
            f"{resource.metadata.type} hold {expected.__name__}",
            resource.pointer,
        )

    # --- commit --------------------------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Commit a planned event and publish it to watchers."""
        resource = event.resource
        assert resource is not None
        md = resource.metadata
        store = self._kinds.get((md.namespace, md.type)) or self._store(md.namespace, md.type)
        rid = md.id
        event_type = event.type
        if event_type is EventType.UPDATED:
            store.resources[rid] = resource
        elif event_type is EventType.CREATED:
            ids = store.sorted_ids
            if ids is not None:
                if not ids or rid > ids[-1]:
                    ids.append(rid)  # ids often arrive in order: no search
                else:
                    bisect.insort(ids, rid)
            if store.spec_type is None:
                store.spec_type = type(resource.spec)
            store.resources[rid] = resource
        else:
            del store.resources[rid]
            ids = store.sorted_ids
            if ids is not None:
                del ids[bisect.bisect_left(ids, rid)]
        store.log.append(event)

    def load(self, resource: Resource[Any]) -> None:
        """Insert a stored resource as-is, without an event (used when a persistent backend opens)."""
        md = resource.metadata
        store = self._store(md.namespace, md.type)
        store.resources[resource.metadata.id] = resource
        store.sorted_ids = None

    def close(self, error: StateError) -> None:
        """End every watch with ``error``."""
        self._closed = error
        for store in self._kinds.values():
            store.log.close(error)
