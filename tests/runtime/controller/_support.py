"""Specs, kinds and small controllers shared by the controller runtime tests."""

from __future__ import annotations

from volumed.runtime import Kind, Pointer, Resource, Spec
from volumed.runtime.controller import Controller, ControllerContext, Input, InputKind, Output

NS = "default"
SOURCES = Kind(NS, "Sources.test.volumed.dev")
DERIVED = Kind(NS, "Deriveds.test.volumed.dev")
EXTRA = Kind(NS, "Extras.test.volumed.dev")


class Value(Spec):
    value: int = 0


def source(id_: str, value: int = 0) -> Resource[Value]:
    return Resource.new(NS, SOURCES.type, id_, Value(value=value))


def derived_ptr(id_: str) -> Pointer:
    return DERIVED.pointer(id_)


class Deriver(Controller):
    """For every source, a derived resource with the same id and twice its value."""

    name = "Deriver"
    inputs = (Input(NS, SOURCES.type),)
    outputs = (Output(DERIVED.type),)

    def __init__(self) -> None:
        self.runs = 0

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.runs += 1
        for src in await ctx.list(SOURCES, Value):
            await ctx.apply(Resource.new(NS, DERIVED.type, src.id, Value(value=src.spec.value * 2)))


class Strong(Controller):
    """Holds a finalizer on each running derived resource and mirrors it as an extra; releases on teardown."""

    name = "Strong"
    inputs = (Input(NS, DERIVED.type, kind=InputKind.STRONG),)
    outputs = (Output(EXTRA.type),)
    cleanup_outputs = False  # it manages its outputs itself, in step with its finalizers

    def __init__(self) -> None:
        self.hold = True  # while True, keep finalizers even on tearing-down inputs

    async def reconcile(self, ctx: ControllerContext) -> None:
        for res in await ctx.list(DERIVED):
            extra = EXTRA.pointer(res.id)
            if res.metadata.phase.value == "running":
                await ctx.add_finalizer(res.pointer)
                await ctx.apply(Resource.new(NS, EXTRA.type, res.id, res.spec))
            elif not self.hold:
                await ctx.teardown_and_destroy(extra)
                await ctx.remove_finalizer(res.pointer)
