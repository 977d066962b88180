"""Blocking TPM calls in daemon threads: results and errors come back, cancellation abandons the call."""

from __future__ import annotations

import threading

import anyio
import pytest
import trio

from volumed.keys.tpm._daemon_thread import run_in_daemon_thread


def _thread_facts() -> tuple[bool, str]:
    current = threading.current_thread()
    return current.daemon, current.name


async def test_the_call_runs_in_a_named_daemon_thread_and_returns_its_result() -> None:
    assert await run_in_daemon_thread(_thread_facts, name="volumed-tpm-test") == (True, "volumed-tpm-test")


async def test_the_call_s_exception_reaches_the_caller() -> None:
    def fail() -> None:
        raise ValueError("the TPM said no")

    with pytest.raises(ValueError, match="the TPM said no"):
        await run_in_daemon_thread(fail)


async def test_a_cancelled_caller_returns_at_once_and_the_call_finishes_on_its_own() -> None:
    release = threading.Event()
    finished = threading.Event()

    def hung() -> None:
        release.wait(10)
        finished.set()

    with anyio.move_on_after(0.1) as scope:
        await run_in_daemon_thread(hung)
    assert scope.cancelled_caught
    assert not finished.is_set()
    release.set()
    assert finished.wait(5)
    assert await run_in_daemon_thread(_thread_facts)  # the loop still takes wake-ups after the abandoned one


def test_on_trio() -> None:
    async def main() -> tuple[bool, str]:
        return await run_in_daemon_thread(_thread_facts)

    assert trio.run(main) == (True, "volumed-tpm")


def test_a_call_that_ends_after_its_event_loop_ended_ends_quietly() -> None:
    release = threading.Event()

    async def abandon() -> None:
        with anyio.move_on_after(0.05):
            await run_in_daemon_thread(release.wait, 10, name="volumed-tpm-late")

    anyio.run(abandon)
    [late] = [thread for thread in threading.enumerate() if thread.name == "volumed-tpm-late"]
    release.set()
    late.join(5)
    assert not late.is_alive()
