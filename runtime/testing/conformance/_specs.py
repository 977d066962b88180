"""The resource types the conformance suites store, and the registry a backend needs to rebuild them."""

from __future__ import annotations

from volumed.runtime.resource import Kind, Resource, ResourceDefinition, ResourceRegistry, Spec

NS = "default"
"""The namespace of every suite kind (a router can send it to the backend under test)."""


class Widget(Spec):
    size: int = 0
    name: str = ""


class Gadget(Spec):
    blob: bytes = b""


class Value(Spec):
    value: int = 0


WIDGETS = Kind(NS, "Widgets.conformance.volumed.dev")
GADGETS = Kind(NS, "Gadgets.conformance.volumed.dev")

SOURCES = Kind(NS, "Sources.conformance.volumed.dev")
DOUBLED = Kind(NS, "Doubleds.conformance.volumed.dev")
INCREMENTED = Kind(NS, "Incrementeds.conformance.volumed.dev")
TOTALS = Kind(NS, "Totals.conformance.volumed.dev")
SETTINGS = Kind(NS, "Settings.conformance.volumed.dev")
HELD = Kind(NS, "Helds.conformance.volumed.dev")

SUITE_REGISTRY = ResourceRegistry(
    [
        ResourceDefinition(WIDGETS.type, Widget, NS, aliases=("widget",)),
        ResourceDefinition(GADGETS.type, Gadget, NS),
        *(
            ResourceDefinition(kind.type, Value, NS)
            for kind in (SOURCES, DOUBLED, INCREMENTED, TOTALS, SETTINGS, HELD)
        ),
    ]
)
"""Every type the suites store: backends that rebuild specs by type (as sqlite does) are opened with it."""


def widget(id_: str, size: int = 0, *, kind: Kind = WIDGETS, **labels: str) -> Resource[Widget]:
    return Resource.new(kind.namespace, kind.type, id_, Widget(size=size), labels=labels)


def value(kind: Kind, id_: str, number: int = 0) -> Resource[Value]:
    return Resource.new(kind.namespace, kind.type, id_, Value(value=number))
