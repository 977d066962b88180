import anyio
import anyio.lowlevel

from volumed.runtime.controller import WakeSignal


async def _consumed(signal: WakeSignal) -> bool:
    with anyio.move_on_after(0.01):
        await signal.wait()
        return True
    return False


async def test_many_notifications_coalesce_into_one_wakeup() -> None:
    signal = WakeSignal()
    for _ in range(10):
        signal.notify()
    assert signal.notifications == 10
    assert await _consumed(signal) is True
    assert signal.pending is False
    assert await _consumed(signal) is False


async def test_a_waiter_is_woken_by_a_later_notification() -> None:
    signal = WakeSignal()
    woken = 0

    async def waiter() -> None:
        nonlocal woken
        await signal.wait()
        woken += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        assert woken == 0
        signal.notify()
    assert woken == 1


async def test_notifications_while_busy_give_exactly_one_more_round() -> None:
    signal = WakeSignal()
    rounds = 0
    busy = anyio.Event()
    release = anyio.Event()

    async def consumer() -> None:
        nonlocal rounds
        while True:
            await signal.wait()
            rounds += 1
            if rounds == 1:
                busy.set()
                await release.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(consumer)
        signal.notify()
        await busy.wait()
        for _ in range(50):
            signal.notify()
        release.set()
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    assert rounds == 2


async def test_wait_is_a_cancellation_point_even_when_pending() -> None:
    signal = WakeSignal()
    signal.notify()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await signal.wait()
    assert scope.cancelled_caught
    assert signal.pending  # the cancelled wait consumed nothing
