"""The state protocols and their concurrency contract (cosi pkg/state/state.go, in async Python).

Contract, for every backend:
    - Every operation is atomic: it either fully happens (and its one event is published) or raises a
      `StateError` and changes nothing.
    - Writes to one resource are linearisable: versions grow by exactly 1 per effective change and watchers
      see events in that order. A write that changes nothing (equal labels, annotations and spec; a finalizer
      already present; teardown of a tearing-down resource) is a no-op: no version bump, no event.
    - A write that suspends is a cancellation point: cancellation delivered before the write starts leaves
      the state untouched; once a persistent backend has started committing, the commit is shielded and
      completes. A persistent backend suspends on every write (its I/O runs in a worker thread); the
      in-memory backend yields before each write of a kind that has open watchers, and otherwise once every
      few writes (a cooperative budget), so a loop of writes still lets watchers and other tasks run.
    - Reads never suspend on the in-memory index and may be called from any task of the state's event loop.
    - Resources handed out are immutable and shared; do not expect copies.
    - Owner: create stamps ``owner`` (or keeps ``resource.metadata.owner`` when None); update, destroy and
      teardown require the caller's owner to equal the stored one; finalizers may be added/removed by anyone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from volumed.runtime.resource import IDQuery, Kind, LabelQuery, Phase, Pointer, Resource

if TYPE_CHECKING:
    from ._watch import EventStream, Listener


class StateReader(Protocol):
    """Reads and watches."""

    async def get(self, pointer: Pointer) -> Resource[Any]:
        """The resource at ``pointer``. Raises NotFoundError."""
        ...

    async def find(self, pointer: Pointer) -> Resource[Any] | None:
        """The resource at ``pointer``, or None when it does not exist (get-or-create paths use it)."""
        ...

    async def list(
        self, kind: Kind, *, labels: LabelQuery | None = None, ids: IDQuery | None = None
    ) -> list[Resource[Any]]:
        """Resources of ``kind`` matching every given query, sorted by id (an unknown kind is empty)."""
        ...

    def listen(self, kind: Kind, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every change of ``kind`` committed from now on; returns ``stop()``.

        The push side of `watch_kind`, for dispatchers such as the controller runtime: the listener runs
        synchronously inside each write, after the commit and before the write returns, in commit order,
        with the CREATED/UPDATED/DESTROYED event watchers get. It never falls behind, so nothing is
        resynchronised or lost. It must be quick, must not call the state, and should not raise (an exception
        is reported through ``sys.unraisablehook``; the write stands). Hand real work to a task.
        """
        ...

    def watch(self, pointer: Pointer) -> EventStream:
        """Watch one resource: first its current state (CREATED, or NOOP when absent), then every change."""
        ...

    def watch_kind(
        self,
        kind: Kind,
        *,
        bootstrap: bool = False,
        labels: LabelQuery | None = None,
        ids: IDQuery | None = None,
    ) -> EventStream:
        """Watch a kind. With ``bootstrap``, first every current match as CREATED (sorted by id) then one
        BOOTSTRAPPED. With queries, an update that makes a resource match is rewritten to CREATED and one that
        makes it stop matching to DESTROYED (carrying the non-matching value, and ``old`` the last match)."""
        ...


class StateWriter(Protocol):
    """Writes (the minimal core every backend implements)."""

    async def create(self, resource: Resource[Any], *, owner: str | None = None) -> Resource[Any]:
        """Store a new resource at version 1 and return it. Raises AlreadyExistsError."""
        ...

    async def update(
        self,
        resource: Resource[Any],
        *,
        owner: str | None = None,
        expected_phase: Phase | None = Phase.RUNNING,
    ) -> Resource[Any]:
        """Replace labels, annotations and spec; ``resource.version`` must equal the stored version.

        Returns the stored result (the current value when nothing changed). Raises NotFoundError,
        ConflictError, OwnerConflictError, PhaseConflictError (``expected_phase=None`` accepts any phase).
        """
        ...

    async def destroy(self, pointer: Pointer, *, owner: str = "") -> None:
        """Remove a resource. Raises NotFoundError, OwnerConflictError, PendingFinalizersError."""
        ...

    async def add_finalizer(self, pointer: Pointer, *finalizers: str) -> Resource[Any]:
        """Add finalizers not yet present (order kept). Raises NotFoundError."""
        ...

    async def remove_finalizer(self, pointer: Pointer, *finalizers: str) -> Resource[Any]:
        """Remove the given finalizers (absent ones are ignored). Raises NotFoundError."""
        ...

    async def teardown(self, pointer: Pointer, *, owner: str = "") -> bool:
        """Move to phase tearingDown; return whether it is ready to destroy (no finalizers left).

        Raises NotFoundError, OwnerConflictError.
        """
        ...


class CoreState(StateReader, StateWriter, Protocol):
    """What a backend implements; `WrappedState` derives the rest once for all backends."""


UpdateFn = Callable[[Resource[Any]], Resource[Any]]


class State(CoreState, Protocol):
    """The full state API: the core plus operations derived from it."""

    async def update_with_conflicts(
        self,
        pointer: Pointer,
        fn: UpdateFn,
        *,
        owner: str | None = None,
        expected_phase: Phase | None = Phase.RUNNING,
    ) -> Resource[Any]:
        """Read, apply ``fn`` (current -> desired), update; retried while the version conflicts."""
        ...

    async def modify(
        self,
        template: Resource[Any],
        fn: UpdateFn,
        *,
        owner: str | None = None,
        expected_phase: Phase | None = Phase.RUNNING,
    ) -> Resource[Any]:
        """Get-or-create then update: ``fn`` gets the current value (or ``template`` when absent) and returns
        the desired one; retried on version conflict and on a racing create."""
        ...

    async def teardown_and_destroy(self, pointer: Pointer, *, owner: str = "") -> None:
        """Tear down, wait (watch-driven) until every finalizer is removed, then destroy.

        Returns quietly when the resource is already gone; raises OwnerConflictError.
        """
        ...
