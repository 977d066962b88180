"""Declared inputs and outputs are enforced: reads, writes, owners, finalizers and registration."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest
import structlog

from volumed.runtime import OwnerConflictError, Pointer, Resource, in_memory_state
from volumed.runtime.controller import (
    Controller,
    ControllerContext,
    Input,
    InputKind,
    Output,
    OutputKind,
    QController,
    RegistrationError,
    Runtime,
    UndeclaredAccessError,
)
from volumed.runtime.testing import assert_resource, run_runtime

from ._support import DERIVED, EXTRA, NS, SOURCES, Value, source

Action = Callable[[ControllerContext], Awaitable[object]]


class Probe(Controller):
    """Runs one action in its first reconcile and records what it raised."""

    def __init__(
        self,
        action: Action,
        *,
        name: str = "Probe",
        inputs: tuple[Input, ...] = (),
        outputs: tuple[Output, ...] = (),
    ) -> None:
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.action = action
        self.error: BaseException | None = None
        self.done = anyio.Event()

    async def reconcile(self, ctx: ControllerContext) -> None:
        if self.done.is_set():
            return
        try:
            await self.action(ctx)
        except Exception as exc:
            self.error = exc
        finally:
            self.done.set()


async def _probe(probe: Probe) -> BaseException | None:
    state = in_memory_state()
    await state.create(source("s"))
    await state.create(Resource.new(NS, DERIVED.type, "d", Value()), owner="Other")
    async with run_runtime(probe, state=state):
        with anyio.fail_after(5):
            await probe.done.wait()
    return probe.error


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda ctx: ctx.get(SOURCES.pointer("s")), "may not read"),
        (lambda ctx: ctx.find(EXTRA.pointer("x")), "may not read"),
        (lambda ctx: ctx.list(SOURCES), "may not list"),
        (lambda ctx: ctx.create(source("new")), "may not create"),
        (lambda ctx: ctx.apply(source("new")), "may not write"),
        (lambda ctx: ctx.destroy(SOURCES.pointer("s")), "may not destroy"),
        (lambda ctx: ctx.teardown(SOURCES.pointer("s")), "may not tear down"),
    ],
)
async def test_undeclared_reads_and_writes_are_refused(action: Action, message: str) -> None:
    error = await _probe(Probe(action))
    assert isinstance(error, UndeclaredAccessError)
    assert message in str(error)
    assert "'Probe'" in str(error)


async def test_an_id_restricted_input_reads_only_that_id() -> None:
    seen: list[list[str]] = []

    async def lister(ctx: ControllerContext) -> None:
        seen.append([r.id for r in await ctx.list(SOURCES)])
        await ctx.get(SOURCES.pointer("other"))

    probe = Probe(lister, inputs=(Input(NS, SOURCES.type, id="s"),))
    state = in_memory_state()
    await state.create(source("other"))
    await state.create(source("s"))
    async with run_runtime(probe, state=state):
        await probe.done.wait()
    assert isinstance(probe.error, UndeclaredAccessError)
    assert seen == [["s"]]


async def test_inputs_are_read_only() -> None:
    probe = Probe(lambda ctx: ctx.create(source("new")), inputs=(Input(NS, SOURCES.type),))
    error = await _probe(probe)
    assert isinstance(error, UndeclaredAccessError)
    assert "declare Output" in str(error)


async def test_finalizers_only_on_strong_inputs() -> None:
    weak = Probe(lambda ctx: ctx.add_finalizer(SOURCES.pointer("s")), inputs=(Input(NS, SOURCES.type),))
    error = await _probe(weak)
    assert isinstance(error, UndeclaredAccessError)
    assert "STRONG" in str(error)

    strong = Probe(
        lambda ctx: ctx.add_finalizer(SOURCES.pointer("s")),
        inputs=(Input(NS, SOURCES.type, kind=InputKind.STRONG),),
    )
    async with run_runtime(strong) as rt:
        await rt.state.create(source("s"))
        await assert_resource(rt.state, SOURCES.pointer("s"), lambda r: r.metadata.finalizers == ("Probe",))


async def test_owner_is_stamped_and_other_owners_are_protected() -> None:
    async def action(ctx: ControllerContext) -> None:
        await ctx.apply(Resource.new(NS, DERIVED.type, "d", Value(value=1)))  # "d" is owned by "Other"

    probe = Probe(action, outputs=(Output(DERIVED.type, OutputKind.SHARED),))
    error = await _probe(probe)
    assert isinstance(error, OwnerConflictError)


async def test_reads_of_outputs_are_allowed() -> None:
    probe = Probe(lambda ctx: ctx.list(DERIVED), outputs=(Output(DERIVED.type),))
    assert await _probe(probe) is None


async def test_a_reconcile_failure_from_enforcement_is_retried_not_fatal() -> None:
    probe = Probe(lambda ctx: ctx.list(SOURCES))
    with structlog.testing.capture_logs():
        async with run_runtime(probe) as rt:
            await probe.done.wait()
            assert rt.running


class Q(QController):
    name = "Q"

    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        return None


def _named(name: str, *outputs: Output) -> Probe:
    async def nothing(_ctx: ControllerContext) -> None:
        return None

    return Probe(nothing, name=name, outputs=outputs)


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        (Output(DERIVED.type), Output(DERIVED.type), "already declared it exclusive"),
        (Output(DERIVED.type, OutputKind.SHARED), Output(DERIVED.type), "already declared it shared"),
        (Output(DERIVED.type), Output(DERIVED.type, OutputKind.SHARED), "already declared it exclusive"),
    ],
)
def test_exclusive_outputs_have_one_writer(first: Output, second: Output, message: str) -> None:
    runtime = Runtime(in_memory_state())
    runtime.register(_named("A", first))
    with pytest.raises(RegistrationError, match=message):
        runtime.register(_named("B", second))
    assert runtime.controllers == ["A"]


def test_shared_outputs_may_have_several_writers() -> None:
    runtime = Runtime(in_memory_state())
    runtime.register(_named("A", Output(DERIVED.type, OutputKind.SHARED)))
    runtime.register(_named("B", Output(DERIVED.type, OutputKind.SHARED)))
    runtime.register(_named("C", Output(DERIVED.type, OutputKind.SHARED, namespace="other")))
    assert runtime.controllers == ["A", "B", "C"]


def test_bad_registrations() -> None:
    runtime = Runtime(in_memory_state())
    runtime.register(_named("A"))
    with pytest.raises(RegistrationError, match="already registered"):
        runtime.register(_named("A"))
    with pytest.raises(RegistrationError, match="twice"):
        runtime.register(_named("B", Output(DERIVED.type), Output(DERIVED.type)))
    with pytest.raises(RegistrationError, match="non-empty string `name`"):
        runtime.register(_named(""))
    with pytest.raises(RegistrationError, match="not a Controller"):
        runtime.register(object())  # type: ignore[arg-type]
    bad = Q()
    bad.concurrency = 0
    with pytest.raises(RegistrationError, match="concurrency"):
        runtime.register(bad)
    wrong = _named("W")
    wrong.inputs = ("Sources",)  # type: ignore[assignment]
    with pytest.raises(RegistrationError, match="Input values"):
        runtime.register(wrong)


async def test_modify_must_keep_the_pointer() -> None:
    async def action(ctx: ControllerContext) -> None:
        template = Resource.new(NS, DERIVED.type, "mine", Value())
        await ctx.modify(template, lambda r: Resource.new(NS, DERIVED.type, "elsewhere", Value()))

    error = await _probe(Probe(action, outputs=(Output(DERIVED.type),)))
    assert isinstance(error, ValueError)
    assert "returned a resource at" in str(error)


async def test_typed_reads_check_the_spec_model() -> None:
    class Other(Value):
        pass

    error = await _probe(
        Probe(lambda ctx: ctx.get(SOURCES.pointer("s"), Other), inputs=(Input(NS, SOURCES.type),))
    )
    assert isinstance(error, TypeError)
    assert "not the Other asked for" in str(error)


@pytest.mark.parametrize(
    ("controller", "message"),
    [
        (_named("we\nird"), r"controller 'we\\nird': a controller name must be printable"),
        (_named("red\x1b[31m"), r"controller 'red\\x1b\[31m': a controller name must be printable"),
        (
            Probe(_named("x").action, name="In", inputs=(Input(NS, "Ws\n  writes block/X"),)),
            r"controller 'In': input type 'Ws\\n  writes block/X' must be printable",
        ),
        (
            _named("Out", Output("Xs.test\x07", namespace="ns")),
            r"controller 'Out': output type 'Xs.test\\x07' must be printable",
        ),
        (
            _named("OutNs", Output(DERIVED.type, namespace="n\rs")),
            r"controller 'OutNs': output namespace 'n\\rs' must be printable",
        ),
    ],
    ids=["newline-name", "escape-name", "input-type", "output-type", "output-namespace"],
)
def test_names_with_control_characters_are_refused(controller: Controller, message: str) -> None:
    """A name is printed by `volumed graph` and `metrics` and in logs: a newline or an escape sequence in it
    could forge lines or drive the terminal."""
    runtime = Runtime(in_memory_state())
    with pytest.raises(RegistrationError, match=message):
        runtime.register(controller)
    assert runtime.controllers == []
