"""The shipped state conformance suite on every backend of the project (the suite: StateConformance)."""

from __future__ import annotations

from volumed.runtime import (
    AlreadyExistsError,
    ConflictError,
    InvalidResourceError,
    NotFoundError,
    OwnerConflictError,
    PendingFinalizersError,
    PhaseConflictError,
    StateError,
)
from volumed.runtime.testing.conformance import StateConformance

from .._backends import InMemory, Router, Sqlite


class TestInMemory(InMemory, StateConformance):
    pass


class TestSqlite(Sqlite, StateConformance):
    pass


class TestRouter(Router, StateConformance):
    pass


def test_errors_share_one_hierarchy() -> None:
    for error in (
        NotFoundError,
        AlreadyExistsError,
        ConflictError,
        OwnerConflictError,
        PhaseConflictError,
        PendingFinalizersError,
        InvalidResourceError,
    ):
        assert issubclass(error, StateError)
    # Retrying an owner or phase conflict cannot help, so they are not version conflicts.
    assert not issubclass(OwnerConflictError, ConflictError)
    assert not issubclass(PhaseConflictError, ConflictError)
