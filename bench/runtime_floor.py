"""The floor under bench/runtime.py's ratio: its chain rebuilt with the runtime's semantics and nothing else.

Run: ``.venv/bin/python bench/runtime_floor.py [--quick]`` (``make bench`` runs it).

``bench/runtime.py`` asks the controller chain to take at most twice as long as a bare asyncio pipeline. This
measures how low any CPython implementation of the same semantics can go, to tell what the goal demands of
the resource model from what it demands of the runtime's own code. The *floor* chain keeps, per write,
only what the runtime's contract requires: an immutable resource with its metadata (version, owner,
timestamps), stored per kind; one event per write handed to a listener inside the write; a deduplicating
keyed queue per controller (one worker at a time per key); a write-access check; an owner stamp. It has no
error handling, retries, fairness yields, watch history, metrics, routing or guard layers, so no real runtime
can be faster. It runs twice:

* ``separate``: the resource and its metadata are two objects, as in ``volumed.runtime``;
* ``merged``: the metadata fields live in the resource object itself (one object per stored resource).

The baseline is bench/runtime.py's own. Last line, JSON: baseline_s, floor_s, floor_ratio (separate
metadata), merged_floor_s, merged_floor_ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from runtime import NS, ROUNDS, STAGES, Payload, bench_baseline, derive  # bench/runtime.py

Key = tuple[str, str, str]  # namespace, type, id


class Metadata:
    """A resource's metadata (frozen by convention here: nothing writes it after building)."""

    __slots__ = (
        "annotations",
        "created",
        "finalizers",
        "id",
        "labels",
        "namespace",
        "owner",
        "phase",
        "type",
        "updated",
        "version",
    )


class Resource:
    """A resource as two objects: metadata and spec."""

    __slots__ = ("metadata", "spec")


class MergedResource:
    """A resource as one object: the metadata fields and the spec."""

    __slots__ = (*Metadata.__slots__, "spec")


def _fill(
    md: Any, namespace: str, type_: str, id_: str, version: int, owner: str, now: datetime | None
) -> Any:
    md.namespace, md.type, md.id, md.version, md.owner = namespace, type_, id_, version, owner
    md.labels = md.annotations = None
    md.finalizers, md.phase, md.created, md.updated = (), "running", now, now
    return md


def build_separate(
    namespace: str, type_: str, id_: str, version: int, owner: str, now: datetime | None, spec: Payload
) -> Any:
    resource = Resource()
    resource.metadata = _fill(Metadata(), namespace, type_, id_, version, owner, now)
    resource.spec = spec
    return resource


def build_merged(
    namespace: str, type_: str, id_: str, version: int, owner: str, now: datetime | None, spec: Payload
) -> Any:
    resource = _fill(MergedResource(), namespace, type_, id_, version, owner, now)
    resource.spec = spec
    return resource


Builder = Callable[[str, str, str, int, str, datetime | None, Payload], Any]


class Event:
    __slots__ = ("old", "resource", "type")


class FloorState:
    """Resources per kind; a create stamps version 1, the owner and the times, then calls the listeners."""

    def __init__(self, build: Builder, separate: bool) -> None:
        self.build = build
        self.separate = separate
        self.stores: dict[tuple[str, str], dict[str, Any]] = {}
        self.listeners: dict[tuple[str, str], list[Callable[[Event], None]]] = {}

    def find(self, key: Key) -> Any:
        store = self.stores.get((key[0], key[1]))
        return None if store is None else store.get(key[2])

    def create(self, resource: Any, owner: str) -> Any:
        md = resource.metadata if self.separate else resource
        kind = (md.namespace, md.type)
        store = self.stores.setdefault(kind, {})
        if md.id in store:
            raise KeyError(md.id)
        stored = self.build(md.namespace, md.type, md.id, 1, owner, datetime.now(UTC), resource.spec)
        store[md.id] = stored
        event = Event()
        event.type, event.resource, event.old = "created", stored, None
        for listener in self.listeners.get(kind, ()):
            listener(event)
        return stored


class FloorQueue:
    """Deduplicated keys, one worker per key at a time (put while processing: processed again after)."""

    def __init__(self) -> None:
        self.ready: deque[Key] = deque()
        self.dirty: set[Key] = set()
        self.processing: set[Key] = set()
        self.waiter: asyncio.Future[None] | None = None

    def put(self, key: Key) -> None:
        if key in self.dirty:
            return
        self.dirty.add(key)
        if key not in self.processing:
            self.ready.append(key)
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def get(self) -> Key:
        while not self.ready:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        key = self.ready.popleft()
        self.dirty.discard(key)
        self.processing.add(key)
        return key

    def done(self, key: Key) -> None:
        self.processing.discard(key)
        if key in self.dirty:
            self.ready.append(key)


async def floor_chain(n: int, *, merged: bool) -> float:
    build = build_merged if merged else build_separate
    state = FloorState(build, separate=not merged)
    queues = [FloorQueue() for _ in STAGES]
    finished = asyncio.Event()
    created = 0

    def feeder(queue: FloorQueue) -> Callable[[Event], None]:
        def listener(event: Event) -> None:
            md = event.resource if merged else event.resource.metadata
            queue.put((md.namespace, md.type, md.id))

        return listener

    def count_final(_event: Event) -> None:
        nonlocal created
        created += 1
        if created == n:
            finished.set()

    for index in (1, 2, 3):
        state.listeners.setdefault((NS, STAGES[index - 1].type), []).append(feeder(queues[index]))
    state.listeners.setdefault((NS, STAGES[3].type), []).append(count_final)

    async def worker(index: int) -> None:
        queue, target, owner = queues[index], STAGES[index].type, f"Stage{index}"
        writable = {(NS, target)}
        while True:
            key = await queue.get()
            try:
                source = state.find(key)
                if source is not None:
                    output = build(NS, target, key[2], 0, "", None, derive(source.spec))
                    if (NS, target) not in writable:
                        raise PermissionError(target)
                    if state.find((NS, target, key[2])) is None:
                        state.create(output, owner)
            finally:
                queue.done(key)

    tasks = [asyncio.create_task(worker(index)) for index in (1, 2, 3)]
    start = time.perf_counter()
    for i in range(n):
        state.create(build(NS, STAGES[0].type, f"r{i:06d}", 0, "", None, Payload(value=i, label="x")), "")
        await asyncio.sleep(0)  # as both chains of bench/runtime.py
    await finished.wait()
    elapsed = time.perf_counter() - start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    final = state.stores[(NS, STAGES[3].type)]
    if len(final) != n or any(r.spec.value != int(k[1:]) + 3 for k, r in final.items()):
        raise SystemExit("floor chain did not converge")
    return elapsed


async def best(fn: Callable[[int], Awaitable[float]], n: int) -> float:
    times = []
    for _ in range(ROUNDS):
        gc.collect()
        times.append(await fn(n))
    return min(times)


async def main(quick: bool) -> dict[str, Any]:
    n = 1_000 if quick else 10_000
    baseline_s = await best(bench_baseline, n)
    floor_s = await best(lambda k: floor_chain(k, merged=False), n)
    merged_s = await best(lambda k: floor_chain(k, merged=True), n)
    print(f"baseline:              {baseline_s:.3f}s")
    print(f"floor, separate metadata: {floor_s:.3f}s, ratio {floor_s / baseline_s:.2f}")
    print(f"floor, merged metadata:   {merged_s:.3f}s, ratio {merged_s / baseline_s:.2f}")
    return {
        "baseline_s": round(baseline_s, 4),
        "floor_s": round(floor_s, 4),
        "floor_ratio": round(floor_s / baseline_s, 3),
        "merged_floor_s": round(merged_s, 4),
        "merged_floor_ratio": round(merged_s / baseline_s, 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a tenth of the size")
    print(json.dumps(asyncio.run(main(parser.parse_args().quick))))
    sys.exit(0)
