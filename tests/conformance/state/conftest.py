"""The state backends every conformance test runs against, and the specs they store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

from volumed.runtime import (
    InMemoryCore,
    Kind,
    NamespacedRouter,
    Resource,
    ResourceDefinition,
    ResourceRegistry,
    Spec,
    SqliteCore,
    WrappedState,
)

if TYPE_CHECKING:
    from pathlib import Path

NS = "default"
OTHER_NS = "persistent"


class Widget(Spec):
    size: int = 0
    name: str = ""


class Gadget(Spec):
    blob: bytes = b""


WIDGETS = Kind(NS, "Widgets.conformance.volumed.dev")
GADGETS = Kind(NS, "Gadgets.conformance.volumed.dev")
ROUTED_WIDGETS = Kind(OTHER_NS, WIDGETS.type)

REGISTRY = ResourceRegistry(
    [
        ResourceDefinition(WIDGETS.type, Widget, NS, aliases=("widget",)),
        ResourceDefinition(GADGETS.type, Gadget, NS),
    ]
)


def widget(id_: str, size: int = 0, *, kind: Kind = WIDGETS, **labels: str) -> Resource[Widget]:
    return Resource.new(kind.namespace, kind.type, id_, Widget(size=size), labels=labels)


BACKENDS = ["inmem", "sqlite", "router"]

StateFactory = Callable[..., Any]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def state(backend: str, tmp_path: Path) -> AsyncIterator[WrappedState]:
    """A fresh full state on each backend. The router sends NS to sqlite and everything else to memory, so
    the conformance kinds exercise routing to a persistent backend."""
    if backend == "inmem":
        yield WrappedState(InMemoryCore(history=64))
        return
    core = await SqliteCore.open(tmp_path / "state.db", REGISTRY, history=64)
    try:
        if backend == "sqlite":
            yield WrappedState(core)
        else:
            yield WrappedState(NamespacedRouter(InMemoryCore(history=64), {NS: core}))
    finally:
        await core.aclose()
