"""The controllers the runtime suite runs: a chain, failing ones, requeuers, a queue one, a holder."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import anyio

from volumed.runtime.controller import (
    Controller,
    ControllerContext,
    ControllerReader,
    Input,
    InputKind,
    Output,
    QController,
    RequeueError,
)
from volumed.runtime.resource import Phase, Pointer, Resource
from volumed.runtime.state import NotFoundError

from ._specs import DOUBLED, HELD, INCREMENTED, NS, SETTINGS, SOURCES, TOTALS, Value, value

if TYPE_CHECKING:
    from collections.abc import Sequence


class Double(Controller):
    """First link of the chain: for every source, a doubled resource with its id and twice its value."""

    name = "Double"
    inputs = (Input(NS, SOURCES.type),)
    outputs = (Output(DOUBLED.type),)

    async def reconcile(self, ctx: ControllerContext) -> None:
        for source in await ctx.list(SOURCES, Value):
            await ctx.apply(value(DOUBLED, source.id, source.spec.value * 2))


class Increment(Controller):
    """Second link: every doubled resource plus one."""

    name = "Increment"
    inputs = (Input(NS, DOUBLED.type),)
    outputs = (Output(INCREMENTED.type),)

    async def reconcile(self, ctx: ControllerContext) -> None:
        for doubled in await ctx.list(DOUBLED, Value):
            if doubled.metadata.phase is Phase.RUNNING:
                await ctx.apply(value(INCREMENTED, doubled.id, doubled.spec.value + 1))


class Total(Controller):
    """Last link: one total of every incremented value."""

    name = "Total"
    inputs = (Input(NS, INCREMENTED.type),)
    outputs = (Output(TOTALS.type),)

    async def reconcile(self, ctx: ControllerContext) -> None:
        running = [r for r in await ctx.list(INCREMENTED, Value) if r.metadata.phase is Phase.RUNNING]
        await ctx.apply(value(TOTALS, "all", sum(r.spec.value for r in running)))


class Flaky(Controller):
    """`Double`, except that its first ``failures`` reconciles raise."""

    name = "Flaky"
    inputs = (Input(NS, SOURCES.type),)
    outputs = (Output(DOUBLED.type),)

    def __init__(self, failures: int) -> None:
        self.failures_left = failures

    async def reconcile(self, ctx: ControllerContext) -> None:
        sources = await ctx.list(SOURCES, Value)
        if self.failures_left > 0:
            self.failures_left -= 1
            raise RuntimeError("transient failure")
        for source in sources:
            await ctx.apply(value(DOUBLED, source.id, source.spec.value * 2))


class AlwaysFails(Controller):
    name = "AlwaysFails"
    inputs = (Input(NS, SOURCES.type),)

    async def reconcile(self, ctx: ControllerContext) -> None:
        raise ValueError("broken for good")


class RequeueRaiser(Controller):
    """Raises `RequeueError` once, then writes its total."""

    name = "RequeueRaiser"
    outputs = (Output(TOTALS.type),)

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.runs = 0

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.runs += 1
        if self.runs == 1:
            raise RequeueError("not there yet", self.interval)
        await ctx.apply(value(TOTALS, "requeued", self.runs))


class Requeuer(Controller):
    """No inputs: asks to be reconciled again twice (``ctx.requeue_after``); counts its runs in a total."""

    name = "Requeuer"
    outputs = (Output(TOTALS.type),)

    def __init__(self) -> None:
        self.runs = 0

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.runs += 1
        await ctx.apply(value(TOTALS, "runs", self.runs))
        if self.runs < 3:
            ctx.requeue_after(0.01)


class PerSource(QController):
    """One incremented resource per source: value * the "factor" setting. A negative source fails its key.

    Records any key reconciled twice at the same time (the queue must never do that).
    """

    name = "PerSource"
    inputs = (Input(NS, SOURCES.type), Input(NS, SETTINGS.type, id="factor"))
    outputs = (Output(INCREMENTED.type),)
    concurrency = 4

    def __init__(self) -> None:
        self.active: set[Pointer] = set()
        self.overlaps: list[Pointer] = []

    async def map_input(self, reader: ControllerReader, resource: Resource[Any]) -> Sequence[Pointer]:
        if resource.metadata.type == SETTINGS.type:  # a secondary input: every source is affected
            return [r.pointer for r in await reader.list(SOURCES)]
        return [resource.pointer]

    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        if pointer in self.active:
            self.overlaps.append(pointer)
        self.active.add(pointer)
        try:
            await anyio.lowlevel.checkpoint()  # give another reconcile of the same key a chance to overlap
            source = await ctx.find(pointer, Value)
            if source is None:
                with contextlib.suppress(NotFoundError):
                    await ctx.destroy(INCREMENTED.pointer(pointer.id))
                return
            if source.spec.value < 0:
                raise RuntimeError(f"source {pointer.id} is negative")
            setting = await ctx.find(SETTINGS.pointer("factor"), Value)
            factor = setting.spec.value if setting is not None else 1
            await ctx.apply(value(INCREMENTED, pointer.id, source.spec.value * factor))
        finally:
            self.active.discard(pointer)


class Holder(Controller):
    """Holds a finalizer on each running doubled resource and mirrors it; releases them when told."""

    name = "Holder"
    inputs = (Input(NS, DOUBLED.type, kind=InputKind.STRONG),)
    outputs = (Output(HELD.type),)
    cleanup_outputs = False  # it manages its outputs itself, in step with its finalizers

    def __init__(self) -> None:
        self.hold = True

    async def reconcile(self, ctx: ControllerContext) -> None:
        for doubled in await ctx.list(DOUBLED, Value):
            if doubled.metadata.phase is Phase.RUNNING:
                await ctx.add_finalizer(doubled.pointer)
                await ctx.apply(value(HELD, doubled.id, doubled.spec.value))
            elif not self.hold:
                await ctx.teardown_and_destroy(HELD.pointer(doubled.id))
                await ctx.remove_finalizer(doubled.pointer)


class Stuck(Controller):
    """A reconcile that never returns by itself: the runtime's stop must cancel it."""

    name = "Stuck"
    inputs = (Input(NS, SOURCES.type),)

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.cancelled = False

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.entered.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise
