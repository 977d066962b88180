"""The encryption step's time limit counts the step's own work, not its wait for a KDF turn: with more
volumes than KDF turns (ten volumes on two CPUs take one at a time) the last volumes queued past the 60 s
limit, failed with a timeout and ran their KDFs again on the retry (measured in the dm boot bench)."""

from __future__ import annotations

import time

import anyio
import pytest

from volumed.controllers.block._encryption import _run_kdf, step_time_limit
from volumed.storage.luks2 import KdfLoad

WHOLE_MACHINE = KdfLoad(threads=1 << 16, memory_kib=0)  # every CPU: one run at a time


def slow_kdf() -> str:
    time.sleep(0.6)
    return "first"


def fast_kdf() -> str:
    return "second"


async def test_a_kdf_waiting_for_its_turn_is_not_timed_out() -> None:
    results: list[str] = []
    async with anyio.create_task_group() as tg:

        async def first() -> None:
            results.append(await _run_kdf(slow_kdf, WHOLE_MACHINE))

        tg.start_soon(first)
        await anyio.sleep(0.05)  # the first holds the only turn
        with step_time_limit(0.3):  # shorter than the queue, longer than the KDF itself
            results.append(await _run_kdf(fast_kdf, WHOLE_MACHINE))
    assert results == ["first", "second"]


async def test_the_step_itself_is_still_limited() -> None:
    with pytest.raises(TimeoutError), step_time_limit(0.1):
        await anyio.sleep(1)

    async def kdf_then_more() -> None:
        with step_time_limit(0.1):
            await _run_kdf(lambda: None, WHOLE_MACHINE)
            await anyio.sleep(1)  # the time after the KDF counts again

    with pytest.raises(TimeoutError):
        await kdf_then_more()
