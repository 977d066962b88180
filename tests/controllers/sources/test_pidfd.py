"""The process-exit source: a watched process that exits wakes the controller once, child or not."""

from __future__ import annotations

import subprocess

import anyio

from volumed.controllers.sources import watch_exits


def test_an_exit_wakes_once_and_a_process_already_gone_wakes_at_start() -> None:
    process = subprocess.Popen(["sleep", "600"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    wakes: list[anyio.Event] = []

    def wake(*_: object) -> None:
        wakes[len([w for w in wakes if w.is_set()])].set()

    async def main() -> None:
        wakes.extend(anyio.Event() for _ in range(3))
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: watch_exits(lambda: {process.pid, gone.pid}, wake, interval=0.05))
            await wakes[0].wait()  # at start: for what exited before (the gone one among them)
            await anyio.sleep(0.2)
            assert not wakes[1].is_set()
            process.kill()
            await wakes[1].wait()
            await anyio.sleep(0.2)  # still listed, reported once
            assert not wakes[2].is_set()
            group.cancel_scope.cancel()

    try:
        anyio.run(main)
    finally:
        process.kill()
        process.wait()
