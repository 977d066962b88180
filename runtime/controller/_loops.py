"""The loops the runtime runs per controller: whole-controller reconcile, output cleanup, queue workers,
event sources."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from volumed.runtime.resource import Kind, Phase
from volumed.runtime.state import Event, EventType, NotFoundError, PendingFinalizersError

from ._backoff import Backoff
from ._context import ControllerContext
from ._controller import Controller, QController
from ._entries import traceback_text
from ._errors import RequeueError, failure_text, passes_through
from ._feed import wakes

if TYPE_CHECKING:
    import random

    from volumed.runtime.resource import Pointer
    from volumed.runtime.state import State

    from ._backoff import BackoffPolicy
    from ._entries import ControllerEntry, QueueEntry, WholeEntry
    from ._source import EventSource


async def run_whole(
    state: State, entry: WholeEntry, policy: BackoffPolicy, rng: random.Random | None
) -> None:
    """Reconcile a `Controller` on every (coalesced) wake-up, requeue deadline or retry, until cancelled."""
    controller = entry.controller
    assert isinstance(controller, Controller)
    metrics = entry.metrics
    signal = entry.signal
    backoff = Backoff(policy, rng)
    requeue: float | None = None
    retry: float | None = None
    requeues = 0  # consecutive RequeueErrors: a streak of failures too (for quiet_failures)
    while True:
        if retry is not None:
            await anyio.sleep(retry)  # a failing controller waits out its backoff, whatever changes
        elif requeue is not None:
            with anyio.move_on_after(requeue):
                await signal.wait()
        else:
            await signal.wait()
        signal.clear()  # changes notified so far are seen by this reconcile
        retry = requeue = None
        ctx = ControllerContext(state, entry.rules, metrics, entry.logger)
        started = metrics.reconcile_started()
        try:
            await controller.reconcile(ctx)
            if controller.cleanup_outputs:
                await cleanup_outputs(state, entry, controller, ctx)
            entry.logger.debug("reconciled", seconds=round(metrics.reconcile_ended(started), 4))
        except RequeueError as exc:
            metrics.reconcile_ended(started)
            metrics.errors += 1
            retry = exc.interval
            requeues += 1
            entry.log_failure(
                backoff.failures + requeues,
                "reconcile asked to requeue",
                retry_in=retry,
                cause=str(exc.cause),
            )
        except BaseException as exc:  # a panic too (BaseException): a failure, not the end of the runtime
            if passes_through(exc):
                raise
            metrics.reconcile_ended(started)
            metrics.errors += 1
            retry = backoff.failed()
            metrics.failure_streak = backoff.failures
            entry.log_failure(
                backoff.failures + requeues,
                "reconcile failed",
                retry_in=round(retry, 3),
                error=failure_text(exc),
                exception=traceback_text(exc),
            )
        else:
            if backoff.failures or requeues:
                entry.logger.info("reconcile succeeded again", after_failures=backoff.failures + requeues)
            backoff.succeeded()
            requeues = 0
            metrics.failure_streak = 0
            requeue = ctx.requested_requeue


async def cleanup_outputs(
    state: State, entry: ControllerEntry, controller: Controller, ctx: ControllerContext
) -> None:
    """Tear down and destroy owned outputs the reconcile did not write (finalizers permitting)."""
    name = entry.name
    touched = ctx.touched
    for out in controller.outputs:
        for resource in await state.list(Kind(out.namespace, out.type)):
            md = resource.metadata
            if md.owner != name:
                continue
            pointer = resource.pointer
            if pointer in touched:
                continue
            try:
                if md.phase is Phase.RUNNING:
                    ready = await state.teardown(pointer, owner=name)
                    entry.metrics.writes += 1
                else:
                    ready = not md.finalizers
                if ready:
                    await state.destroy(pointer, owner=name)
                    entry.metrics.writes += 1
            except (NotFoundError, PendingFinalizersError):
                # Gone already, or a finalizer was added meanwhile: its removal wakes us again.
                continue


async def run_queue(state: State, entry: QueueEntry) -> None:
    """Map every existing input resource once, then run ``concurrency`` workers until cancelled."""
    controller = entry.controller
    assert isinstance(controller, QController)
    notify = entry.notify_primary if entry.primary_only else entry.notify
    for inp in controller.inputs:
        for resource in await state.list(Kind(inp.namespace, inp.type)):
            if wakes(inp, entry.name, EventType.CREATED, resource):  # as if just created
                notify(Event(EventType.CREATED, resource))
    async with anyio.create_task_group() as workers:
        if not entry.primary_only:
            workers.start_soon(entry.map_changes, name=f"volumed.runtime {entry.name} map_input")
        for index in range(controller.concurrency):
            workers.start_soon(
                queue_worker, state, entry, controller, name=f"volumed.runtime {entry.name} #{index}"
            )


async def queue_worker(state: State, entry: QueueEntry, controller: QController) -> None:
    """Reconcile keys from the controller's queue: forget a key's backoff on success, retry it on failure."""
    queue = entry.queue
    metrics = entry.metrics
    rules = entry.rules
    logger = entry.logger
    while True:
        key = await queue.get()
        try:
            started = metrics.reconcile_started()
            ctx = ControllerContext(state, rules, metrics, logger)
            await controller.reconcile(ctx, key)
            logger.debug("reconciled", key=str(key), seconds=round(metrics.reconcile_ended(started), 4))
        except RequeueError as exc:
            metrics.reconcile_ended(started)
            metrics.errors += 1
            queue.retry(key, delay=exc.interval)  # part of the key's failure streak, after the asked delay
            entry.log_failure(
                queue.failures(key),
                "reconcile asked to requeue",
                key=str(key),
                retry_in=exc.interval,
                cause=str(exc.cause),
            )
        except BaseException as exc:  # as in run_whole: only cancellation and the exits end the runtime
            if passes_through(exc):
                raise
            metrics.reconcile_ended(started)
            metrics.errors += 1
            delay = queue.retry(key)
            entry.log_failure(
                queue.failures(key),
                "reconcile failed",
                key=str(key),
                retry_in=round(delay, 3),
                error=failure_text(exc),
                exception=traceback_text(exc),
            )
        else:
            queue.forget(key)
            requeue = ctx.requested_requeue
            if requeue is not None:
                queue.put_after(key, requeue)
        finally:
            queue.done(key)


async def run_source(
    entry: ControllerEntry, source: EventSource, policy: BackoffPolicy, rng: random.Random | None
) -> None:
    """Run one event source of a controller until cancelled: restarted with backoff when it raises, left
    alone when it returns (it ended for good)."""
    backoff = Backoff(policy, rng)
    logger = entry.logger.bind(source=source.name)
    while True:
        woke = False

        def wake(*keys: Pointer) -> None:
            nonlocal woke
            entry.wake(*keys)
            woke = True

        try:
            await source.run(wake)
        except BaseException as exc:  # like a reconcile: only cancellation and the exits end the runtime
            if passes_through(exc):
                raise
            if woke:
                backoff.succeeded()  # it worked before it failed: start the streak afresh
            delay = backoff.failed()
            entry.log_failure(
                backoff.failures,
                "event source failed",
                source=source.name,
                retry_in=round(delay, 3),
                error=failure_text(exc),
                exception=traceback_text(exc),
            )
            await anyio.sleep(delay)
        else:
            logger.info("event source ended")
            return
