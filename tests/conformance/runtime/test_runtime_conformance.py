"""The shipped runtime conformance suite over every state backend of the project (RuntimeConformance)."""

from __future__ import annotations

from volumed.runtime.testing.conformance import RuntimeConformance

from .._backends import InMemory, Router, Sqlite


class TestInMemory(InMemory, RuntimeConformance):
    pass


class TestSqlite(Sqlite, RuntimeConformance):
    pass


class TestRouter(Router, RuntimeConformance):
    pass
