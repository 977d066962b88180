"""A reconcile that raises a BaseException (a pyo3 panic, a library's own BaseException subclass) is a
controller failure like any other: logged, counted, retried with backoff; the runtime keeps running.

Only cancellation and the exits (KeyboardInterrupt, SystemExit, GeneratorExit) pass through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import structlog
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from volumed.runtime.controller import (
    BackoffPolicy,
    Controller,
    ControllerContext,
    ControllerReader,
    Input,
    QController,
    passes_through,
)
from volumed.runtime.testing import assert_resource, run_runtime

from ._support import NS, SOURCES, Deriver, derived_ptr, source

if TYPE_CHECKING:
    from volumed.runtime import Pointer, Resource

FAST = BackoffPolicy(initial=0.01, multiplier=2.0, jitter=0.0, maximum=1.0)


class Panic(BaseException):
    """Stands for pyo3's PanicException: derived from BaseException, not Exception."""


class PanicsThenWorks(Controller):
    name = "PanicsThenWorks"
    inputs = (Input(NS, SOURCES.type),)

    def __init__(self, panics: int) -> None:
        self.panics_left = panics
        self.succeeded = anyio.Event()

    async def reconcile(self, ctx: ControllerContext) -> None:
        await ctx.list(SOURCES)
        if self.panics_left > 0:
            self.panics_left -= 1
            raise Panic("called `Result::unwrap()` on an `Err` value")
        self.succeeded.set()


async def test_a_base_exception_is_a_failure_with_backoff_and_the_runtime_keeps_running() -> None:
    ctl = PanicsThenWorks(panics=3)
    with structlog.testing.capture_logs() as logs:
        async with run_runtime(ctl, Deriver(), backoff=FAST) as rt:
            with anyio.fail_after(5):
                await ctl.succeeded.wait()
            stats = rt.stats()["PanicsThenWorks"]
            assert (stats.errors, stats.failure_streak) == (3, 0)
            await rt.state.create(source("x", 2))  # the other controllers work on
            await assert_resource(rt.state, derived_ptr("x"), lambda r: r.spec.value == 4)
            assert rt.running
    failures = [e for e in logs if e["event"] == "reconcile failed"]
    assert [e["retry_in"] for e in failures] == [0.01, 0.02, 0.04]
    assert all(e["error"].startswith("Panic: ") and "Traceback" in e["exception"] for e in failures)


def _pbkdf2_with_too_many_iterations() -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=bytes(32), iterations=2**32)
    return kdf.derive(b"passphrase")


class RealPanic(Controller):
    """What a hostile LUKS2 header did to `volumed run`: cryptography panics in a worker thread."""

    name = "RealPanic"
    inputs = (Input(NS, SOURCES.type),)

    def __init__(self) -> None:
        self.runs = 0
        self.second = anyio.Event()

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.runs += 1
        if self.runs >= 2:
            self.second.set()
        await anyio.to_thread.run_sync(_pbkdf2_with_too_many_iterations)


async def test_a_real_pyo3_panic_in_a_worker_thread_does_not_end_the_runtime() -> None:
    ctl = RealPanic()
    with structlog.testing.capture_logs() as logs:
        async with run_runtime(ctl, Deriver(), backoff=FAST) as rt:
            with anyio.fail_after(5):
                await ctl.second.wait()  # retried after the panic
            await rt.state.create(source("y", 1))
            await assert_resource(rt.state, derived_ptr("y"), lambda r: r.spec.value == 2)
            assert rt.running
    failure = next(e for e in logs if e["event"] == "reconcile failed")
    assert failure["controller"] == "RealPanic"
    assert "PanicException" in failure["error"]


class PanickingKey(QController):
    name = "PanickingKey"
    inputs = (Input(NS, SOURCES.type),)

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}
        self.done = anyio.Event()

    async def map_input(self, reader: ControllerReader, resource: Resource[Any]) -> list[Pointer]:
        return [resource.pointer]

    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        self.attempts[pointer.id] = self.attempts.get(pointer.id, 0) + 1
        if pointer.id == "bad" and self.attempts[pointer.id] < 3:
            raise Panic("boom")
        if pointer.id == "bad":
            self.done.set()


async def test_a_base_exception_fails_one_queue_key_which_is_retried() -> None:
    ctl = PanickingKey()
    with structlog.testing.capture_logs() as logs:
        async with run_runtime(ctl, backoff=FAST) as rt:
            await rt.state.create(source("good"))
            await rt.state.create(source("bad"))
            with anyio.fail_after(5):
                await ctl.done.wait()
            assert ctl.attempts == {"good": 1, "bad": 3}
            assert rt.stats()["PanickingKey"].errors == 2
            assert rt.running
    assert [e["key"] for e in logs if e["event"] == "reconcile failed"] == [str(SOURCES.pointer("bad"))] * 2


async def test_passes_through_names_cancellation_and_the_exits_only() -> None:
    assert passes_through(anyio.get_cancelled_exc_class()())
    for exc in (KeyboardInterrupt(), SystemExit(0), GeneratorExit()):
        assert passes_through(exc)
    assert passes_through(BaseExceptionGroup("g", [Panic(), SystemExit(1)]))
    for exc in (Panic(), ValueError(), BaseExceptionGroup("g", [Panic(), ValueError()])):
        assert not passes_through(exc)


class PanickingMapper(QController):
    name = "PanickingMapper"
    inputs = (Input(NS, SOURCES.type),)

    async def map_input(self, reader: ControllerReader, resource: Resource[Any]) -> list[Pointer]:
        raise Panic("cannot map")

    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        raise AssertionError("never called")


async def test_a_base_exception_from_map_input_drops_the_change_only() -> None:
    with structlog.testing.capture_logs() as logs:
        async with run_runtime(PanickingMapper(), Deriver()) as rt:
            await rt.state.create(source("x", 3))
            await assert_resource(rt.state, derived_ptr("x"), lambda r: r.spec.value == 6)
            assert rt.stats()["PanickingMapper"].errors == 1
            assert rt.running
    assert any(e["event"] == "map_input failed; change dropped" for e in logs)
